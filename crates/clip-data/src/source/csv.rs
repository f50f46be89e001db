//! CSV/TSV tables of image paths and captions, with open_clip's options (`--csv-separator`,
//! `--csv-img-key`, `--csv-caption-key`).

use std::path::{Path, PathBuf};

use super::{Indexed, Payload, Record, Text};
use crate::skip::SkipReason;
use crate::{Error, Result};

/// Column names and separator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field separator; `None` picks `,` for `.csv` files and a tab otherwise (open_clip's default).
    pub separator: Option<u8>,
    /// Column of image paths.
    pub img_key: String,
    /// Column of captions.
    pub caption_key: String,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { separator: None, img_key: "filepath".into(), caption_key: "title".into() }
    }
}

/// A table loaded in memory (paths and captions only; images are read when decoded).
#[derive(Debug, Clone)]
pub struct CsvSource {
    rows: Vec<(PathBuf, Option<String>)>,
}

impl CsvSource {
    /// Reads the table at `path`. Relative image paths are resolved against the table's folder.
    /// A missing column is an error; a short row keeps its place and is skipped when loaded.
    pub fn open(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        let path = path.as_ref();
        let separator = options.separator.unwrap_or(if path.extension().is_some_and(|e| e == "csv") { b',' } else { b'\t' });
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(separator)
            .flexible(true)
            .from_path(path)
            .map_err(|e| Error::Source(format!("{}: {e}", path.display())))?;
        let headers = reader.headers().map_err(|e| Error::Source(format!("{}: {e}", path.display())))?.clone();
        let column = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                let found: Vec<&str> = headers.iter().collect();
                Error::Source(format!(
                    "{}: no column `{name}` (columns: {}; separator {:?})",
                    path.display(),
                    found.join(", "),
                    separator as char
                ))
            })
        };
        let (img, caption) = (column(&options.img_key)?, column(&options.caption_key)?);
        let base = path.parent().unwrap_or(Path::new(""));
        let mut rows = Vec::new();
        for (line, row) in reader.records().enumerate() {
            let row = row.map_err(|e| Error::Source(format!("{}: row {}: {e}", path.display(), line + 2)))?;
            let image = row.get(img).map(|p| base.join(p)).unwrap_or_default();
            rows.push((image, row.get(caption).map(str::to_owned)));
        }
        Ok(Self { rows })
    }
}

impl Indexed for CsvSource {
    fn len(&self) -> u64 {
        self.rows.len() as u64
    }

    fn record(&self, _epoch: u64, index: u64) -> Record {
        let (path, caption) = &self.rows[index as usize];
        let payload =
            if path.as_os_str().is_empty() { Payload::Skip(SkipReason::MissingImage) } else { Payload::File(path.clone()) };
        let text = caption.as_ref().map_or(Text::None, |c| Text::Caption(c.clone()));
        Record { key: format!("{index}:{}", path.display()), payload, text, json: None }
    }
}
