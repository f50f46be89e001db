//! The crate's error type.

/// Errors from decoding and preprocessing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an image this crate can decode.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The image has more pixels than allowed (a decompression bomb, or simply too large).
    #[error("image of {width}x{height} pixels exceeds the limit of {limit} pixels")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Pixel limit.
        limit: u64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
