//! Writing float32 matrices as NumPy `.npy` files (format version 1.0), atomically.

use std::path::Path;

use anyhow::{Context, Result};
use clip_tensor::atomic::atomic_write;

/// Writes `values` (row-major, `rows × cols`) as a little-endian float32 `.npy` array.
pub(crate) fn write_f32(path: &Path, values: &[f32], rows: usize, cols: usize) -> Result<()> {
    assert_eq!(values.len(), rows * cols, "matrix size");
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of
    // 64 bytes and ended by a newline.
    let unpadded = 10 + dict.len() + 1;
    let header = format!("{dict}{}\n", " ".repeat(unpadded.div_ceil(64) * 64 - unpadded));
    atomic_write(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for v in values {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}
