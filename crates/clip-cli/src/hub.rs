//! The hub as the commands use it: a `clip_hub::Hub` from the environment (`HF_ENDPOINT`,
//! `HF_TOKEN`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`, or `--offline`), and what the user sees of
//! downloads: a bar per file on a terminal, lines otherwise, nothing under `--quiet` (`progress`).

use clip_hub::{Cache, Hub, HubConfig, Progress};

use crate::progress::{self, Bar, Unit};

/// The hub the environment describes; `offline` as `HF_HUB_OFFLINE=1`.
pub(crate) fn hub(offline: bool) -> Hub {
    let mut config = HubConfig::from_env();
    config.offline |= offline;
    Hub::new(Cache::from_env(), config)
}

/// Shows downloads as they happen: a bar per file (crate::progress), the file's line at its end.
pub(crate) struct Downloads {
    who: &'static str,
    bar: Option<Bar>,
    bytes: u64,
    resumed_from: u64,
}

impl Downloads {
    /// Downloads shown as `who: fetching FILE …`.
    pub(crate) fn new(who: &'static str) -> Self {
        Self { who, bar: None, bytes: 0, resumed_from: 0 }
    }

    /// A hub progress event.
    pub(crate) fn event(&mut self, event: Progress) {
        match event {
            Progress::Start { file, total, resumed_from } => {
                (self.bytes, self.resumed_from) = (resumed_from, resumed_from);
                let mut bar = Bar::new(format!("{}: fetching {file}", self.who), total, Unit::Bytes);
                bar.start_at(resumed_from);
                if progress::mode() == progress::Mode::Lines {
                    let resumed = if resumed_from > 0 { format!(", resuming at {}", human_bytes(resumed_from)) } else { String::new() };
                    let size = total.map_or_else(String::new, |t| format!(" ({}{resumed})", human_bytes(t)));
                    eprintln!("{}: fetching {file}{size}", self.who);
                }
                self.bar = Some(bar);
            }
            Progress::Advance(n) => {
                self.bytes += n;
                if let Some(bar) = &mut self.bar {
                    bar.inc(n);
                }
            }
            Progress::Retry { attempt, error } => {
                self.warn(&format!("connection lost ({error}); retry {attempt}, resuming at {}", human_bytes(self.bytes)));
            }
            Progress::Waiting { file } => {
                let text = format!("{}: waiting for another process fetching {file}", self.who);
                match &self.bar {
                    Some(bar) => bar.println(&text),
                    None => progress::note(&text),
                }
            }
            Progress::Done { file } => {
                let line = |seconds: f64| format!("{}: fetched {file} ({} in {seconds:.1} s)", self.who, human_bytes(self.bytes - self.resumed_from));
                match self.bar.take() {
                    Some(mut bar) => {
                        let text = line(bar.elapsed());
                        bar.finish_with(&text);
                    }
                    None => progress::note(&line(0.0)),
                }
            }
            Progress::Cached { .. } => {}
        }
    }

    fn warn(&self, text: &str) {
        let text = format!("{}: {text}", self.who);
        match &self.bar {
            Some(bar) => bar.warn(&text),
            None => eprintln!("{text}"),
        }
    }
}

/// `1.2 MB`, `345 kB`: decimal units, as the hub shows sizes.
pub(crate) fn human_bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        n => format!("{n} B"),
    }
}
