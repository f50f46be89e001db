//! Small generated fixtures: encoded images and tar shards written on the fly.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, RgbImage};

/// A `w × h` colour image whose pixels depend on `seed`, encoded as `format`.
pub(crate) fn encoded(w: u32, h: u32, seed: u32, format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(w, h, |x, y| {
        let v = x.wrapping_mul(7).wrapping_add(y.wrapping_mul(13)).wrapping_add(seed.wrapping_mul(31));
        image::Rgb([(v % 251) as u8, ((v / 3) % 253) as u8, ((x ^ y ^ seed) % 255) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

pub(crate) fn jpeg(seed: u32) -> Vec<u8> {
    encoded(40 + seed % 17, 30 + seed % 11, seed, ImageFormat::Jpeg)
}

pub(crate) fn png(seed: u32) -> Vec<u8> {
    encoded(24 + seed % 5, 20, seed, ImageFormat::Png)
}

/// A PNG whose first chunk's CRC is wrong.
pub(crate) fn png_bad_crc(seed: u32) -> Vec<u8> {
    let mut bytes = png(seed);
    // IHDR: 8-byte signature, length (4), type (4), 13 data bytes, then its CRC at 29..33.
    bytes[30] ^= 0xFF;
    bytes
}

/// A JPEG whose frame header claims 60000 × 60000 pixels (a decompression bomb).
pub(crate) fn jpeg_bomb() -> Vec<u8> {
    let mut bytes = jpeg(1);
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline JPEG has SOF0");
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    bytes
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}", width = field.len() - 1);
    field[..text.len()].copy_from_slice(text.as_bytes());
}

/// A ustar archive of `(name, bytes)` members, with its end-of-archive blocks.
pub(crate) fn tar(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut header[100..108], 0o644);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], data.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// `n` image-caption samples `{prefix}{i:04}.jpg` + `.txt`, keys unique per prefix.
pub(crate) fn caption_members(prefix: &str, n: u32) -> Vec<(String, Vec<u8>)> {
    let mut members = Vec::new();
    for i in 0..n {
        members.push((format!("{prefix}{i:04}.jpg"), jpeg(i)));
        members.push((format!("{prefix}{i:04}.txt"), format!("a photo number {i} of {prefix}").into_bytes()));
    }
    members
}

/// Writes a shard of `n` good samples to `dir/name`.
pub(crate) fn write_shard(dir: &Path, name: &str, n: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, tar(&caption_members(name.trim_end_matches(".tar"), n))).unwrap();
    path.display().to_string()
}
