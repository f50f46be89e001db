//! `clip tokenize`: UTF-8 lines on stdin, one JSON array of ids per line on stdout, in order.

use std::io::{self, BufRead, BufWriter, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use clip_tokenizer::Tokenizer;

/// Lines tokenized together on the rayon pool; output stays in input order.
const CHUNK: usize = 4096;

/// `stats`: report lines per second on stderr, timed from after the vocabulary is loaded.
pub(crate) fn run(context_length: usize, stats: bool) -> Result<()> {
    let tokenizer = Tokenizer::get();
    let start = Instant::now();
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut lines: Vec<String> = Vec::with_capacity(CHUNK);
    let mut line_number = 0usize;
    let mut replaced = 0usize;
    let mut reader = stdin;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf).context("reading stdin")?;
        if read > 0 {
            line_number += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            let text = match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(text) => text,
                Err(err) => {
                    replaced += 1;
                    eprintln!("clip tokenize: warning: line {line_number} is not valid UTF-8; invalid bytes replaced by U+FFFD");
                    String::from_utf8_lossy(err.as_bytes()).into_owned()
                }
            };
            lines.push(text);
        }
        if lines.len() == CHUNK || (read == 0 && !lines.is_empty()) {
            let ids = tokenizer.tokenize_batch(&lines, context_length)?;
            for row in ids.chunks(context_length) {
                write_row(&mut out, row)?;
            }
            lines.clear();
        }
        if read == 0 {
            break;
        }
    }
    out.flush().context("writing stdout")?;
    if stats {
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "clip tokenize: {line_number} lines in {seconds:.3} s ({:.0} lines/s, {} rayon threads), start-up excluded",
            line_number as f64 / seconds,
            rayon::current_num_threads()
        );
    }
    if replaced > 0 {
        eprintln!("clip tokenize: {replaced} of {line_number} lines had invalid UTF-8");
    }
    Ok(())
}

fn write_row(out: &mut impl Write, row: &[u32]) -> io::Result<()> {
    out.write_all(b"[")?;
    for (i, id) in row.iter().enumerate() {
        if i > 0 {
            out.write_all(b", ")?;
        }
        write!(out, "{id}")?;
    }
    out.write_all(b"]\n")
}
