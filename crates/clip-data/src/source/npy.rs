//! Reading the one-dimensional NumPy arrays that hold multi-label targets in CLIP_benchmark's
//! WebDataset layout (`.npy` members: one 0/1 entry per class).

/// The values of a 1-D `.npy` array of bools, unsigned or signed integers or floats (little
/// endian, C order), as `f32`; `None` for anything else.
pub(crate) fn read_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return None;
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => (u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize, 12),
        _ => return None,
    };
    let header = std::str::from_utf8(bytes.get(start..start + header_len)?).ok()?;
    let field = |name: &str| header.split(&format!("'{name}':")).nth(1).map(str::trim);
    let descr = field("descr")?.strip_prefix('\'')?.split('\'').next()?;
    if field("fortran_order")?.starts_with("True") {
        return None;
    }
    let shape = field("shape")?.strip_prefix('(')?.split(')').next()?;
    let dims: Vec<usize> = shape.split(',').map(str::trim).filter(|d| !d.is_empty()).map(|d| d.parse().ok()).collect::<Option<_>>()?;
    let [n] = dims[..] else { return None };
    let data = &bytes[start + header_len..];
    let values: Vec<f32> = match descr {
        "|b1" | "|u1" => data.iter().map(|&b| f32::from(b)).collect(),
        "|i1" => data.iter().map(|&b| f32::from(b as i8)).collect(),
        "<i4" => data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
        "<i8" => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as f32).collect(),
        "<f4" => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        "<f8" => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32).collect(),
        _ => return None,
    };
    (values.len() == n).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::read_vector;

    fn npy(descr: &str, n: usize, data: &[u8]) -> Vec<u8> {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({n},), }}");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((dict.len() as u16).to_le_bytes());
        out.extend(dict.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn vectors_of_each_dtype_and_bad_input() {
        assert_eq!(read_vector(&npy("|u1", 3, &[0, 1, 1])), Some(vec![0.0, 1.0, 1.0]));
        assert_eq!(read_vector(&npy("<f4", 2, &[0, 0, 128, 63, 0, 0, 0, 0])), Some(vec![1.0, 0.0]));
        assert_eq!(read_vector(&npy("<i8", 1, &[255, 255, 255, 255, 255, 255, 255, 255])), Some(vec![-1.0]));
        assert_eq!(read_vector(&npy("<f4", 3, &[0, 0, 128, 63])), None, "short data");
        assert_eq!(read_vector(&npy("<c8", 1, &[0; 8])), None, "complex");
        assert_eq!(read_vector(b"garbage"), None);
    }
}
