//! Writing matrices as NumPy `.npy` files (format version 1.0), atomically.

use std::path::Path;

use anyhow::{Context, Result};
use clip_tensor::atomic::atomic_write;

/// Writes `values` (row-major, `rows × cols`) as a little-endian float32 `.npy` array.
pub(crate) fn write_f32(path: &Path, values: &[f32], rows: usize, cols: usize) -> Result<()> {
    assert_eq!(values.len(), rows * cols, "matrix size");
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write(path, "<f4", &bytes, rows, cols)
}

/// Writes `data`, the little-endian bytes of a row-major `rows × cols` matrix of NumPy type
/// `descr` (`<f4`, `<f2`), as an `.npy` file.
pub(crate) fn write(path: &Path, descr: &str, data: &[u8], rows: usize, cols: usize) -> Result<()> {
    let header = header(descr, rows, cols);
    atomic_write(path, |w| {
        w.write_all(&header)?;
        w.write_all(data)
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// Magic, version, header length and the header dict, padded with spaces to a multiple of 64
/// bytes and ended by a newline, as `numpy.save` writes it.
fn header(descr: &str, rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + dict.len() + 1;
    let text = format!("{dict}{}\n", " ".repeat(unpadded.div_ceil(64) * 64 - unpadded));
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}
