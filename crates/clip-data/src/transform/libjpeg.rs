//! libjpeg-turbo's decoder, through `mozjpeg` (whose decoder is libjpeg-turbo's, built from source
//! with its SIMD when nasm is there): the training transform's JPEG decode, at any DCT scale.
//!
//! libjpeg reports fatal errors through `error_exit`, which `mozjpeg` turns into an unwind, and
//! only warns about corrupt data (a file cut short is padded with grey). Here an error manager of
//! our own makes every warning fatal too, and the unwind is caught in this module, so callers get
//! an [`Error`] and never a panic.

use std::any::Any;
use std::ffi::CStr;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error};

use crate::preprocess::MAX_PIXELS;
use crate::{Error, Result};

/// The unwind payload of a libjpeg error: its message.
struct Refused(String);

/// Decodes `bytes` at `1/scale` (1, 2, 4 or 8) to RGB into `buffer[..w · h · 3]` (grown as needed,
/// never shrunk) and returns `(w, h)`, `ceil(side / scale)` each. `None` for CMYK and YCCK JPEGs,
/// which libjpeg cannot convert to RGB.
pub(super) fn decode_into(bytes: &[u8], scale: u32, buffer: &mut Vec<u8>) -> Result<Option<(u32, u32)>> {
    if ![1, 2, 4, 8].contains(&scale) {
        return Err(Error::Decode(format!("JPEG DCT scale 1/{scale}: only 1, 1/2, 1/4 and 1/8 exist")));
    }
    match catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, scale, buffer))) {
        Ok(result) => result,
        Err(payload) => Err(refusal(payload)),
    }
}

fn decode_unguarded(bytes: &[u8], scale: u32, buffer: &mut Vec<u8>) -> Result<Option<(u32, u32)>> {
    let to_error = |e: std::io::Error| Error::Decode(format!("libjpeg: {e}"));
    let mut decoder = Decompress::with_err(strict_error_mgr()).from_mem(bytes).map_err(to_error)?;
    let (width, height) = (decoder.width() as u32, decoder.height() as u32);
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::TooLarge { width, height, limit: MAX_PIXELS });
    }
    if matches!(decoder.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK) {
        return Ok(None);
    }
    // `scale(n)` decodes at n/8: 8/scale is 8, 4, 2 or 1.
    decoder.scale((8 / scale) as u8);
    let mut started = decoder.rgb().map_err(to_error)?;
    let (w, h) = (started.width() as u32, started.height() as u32);
    if (w, h) != (width.div_ceil(scale), height.div_ceil(scale)) {
        return Err(Error::Decode(format!("libjpeg decoded {width}x{height} at 1/{scale} to {w}x{h}")));
    }
    let len = w as usize * h as usize * 3;
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    started.read_scanlines_into::<u8>(&mut buffer[..len]).map_err(to_error)?;
    started.finish().map_err(to_error)?;
    Ok(Some((w, h)))
}

/// libjpeg's standard error manager with `error_exit` unwinding with [`Refused`] and every warning
/// (corrupt data) made fatal; trace messages are dropped, as a library prints nothing.
fn strict_error_mgr() -> jpeg_error_mgr {
    // SAFETY: `jpeg_error_mgr` is a plain C struct of integers and function pointers, for which
    // all-zero is a valid value; `jpeg_std_error` then fills in every field.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(fail);
    err.emit_message = Some(warn_is_fatal);
    err
}

extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
    resume_unwind(Box::new(Refused(message(cinfo))));
}

extern "C-unwind" fn warn_is_fatal(cinfo: &mut jpeg_common_struct, level: c_int) {
    // Level -1 is a warning (corrupt data); 0 and up are trace messages.
    if level < 0 {
        fail(cinfo);
    }
}

/// The message template of the current error code, from libjpeg's own table (its parameters left
/// unfilled: formatting them needs a buffer the binding's `format_message` types too short).
fn message(cinfo: &jpeg_common_struct) -> String {
    // SAFETY: `err` points at the error manager set up by `strict_error_mgr`, whose message table
    // is libjpeg's static, NUL-terminated one with `last_jpeg_message + 1` entries.
    unsafe {
        let err = &*cinfo.err;
        let code = err.msg_code;
        if err.jpeg_message_table.is_null() || code < 0 || code > err.last_jpeg_message {
            return format!("libjpeg error {code}");
        }
        let text = *err.jpeg_message_table.add(code as usize);
        if text.is_null() {
            return format!("libjpeg error {code}");
        }
        format!("libjpeg: {}", CStr::from_ptr(text).to_string_lossy())
    }
}

fn refusal(payload: Box<dyn Any + Send>) -> Error {
    match payload.downcast::<Refused>() {
        Ok(refused) => Error::Decode(refused.0),
        Err(_) => Error::DecoderPanic,
    }
}
