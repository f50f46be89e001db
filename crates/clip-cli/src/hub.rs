//! The hub as the commands use it: a `clip_hub::Hub` from the environment (`HF_ENDPOINT`,
//! `HF_TOKEN`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`, or `--offline`), and what the user sees of
//! downloads: a bar per file on a terminal (indicatif), one line per file otherwise.

use std::time::{Duration, Instant};

use clip_hub::{Cache, Hub, HubConfig, Progress};
use indicatif::{ProgressBar, ProgressStyle};

/// The hub the environment describes; `offline` as `HF_HUB_OFFLINE=1`.
pub(crate) fn hub(offline: bool) -> Hub {
    let mut config = HubConfig::from_env();
    config.offline |= offline;
    Hub::new(Cache::from_env(), config)
}

/// Shows downloads as they happen.
pub(crate) struct Downloads {
    who: &'static str,
    tty: bool,
    bar: Option<ProgressBar>,
    file: String,
    bytes: u64,
    resumed_from: u64,
    started: Instant,
}

impl Downloads {
    /// Bars on a terminal, plain lines on anything else.
    pub(crate) fn new(who: &'static str) -> Self {
        use std::io::IsTerminal;
        Self { who, tty: std::io::stderr().is_terminal(), bar: None, file: String::new(), bytes: 0, resumed_from: 0, started: Instant::now() }
    }

    /// A hub progress event.
    pub(crate) fn event(&mut self, event: Progress) {
        match event {
            Progress::Start { file, total, resumed_from } => {
                (self.file, self.bytes, self.resumed_from, self.started) = (file, resumed_from, resumed_from, Instant::now());
                if self.tty {
                    let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
                    bar.set_style(
                        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar.set_message(format!("fetching {}", self.file));
                    bar.set_position(resumed_from);
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.bar = Some(bar);
                } else {
                    let resumed = if resumed_from > 0 { format!(", resuming at {}", human_bytes(resumed_from)) } else { String::new() };
                    let size = total.map_or_else(String::new, |t| format!(" ({}{resumed})", human_bytes(t)));
                    eprintln!("{}: fetching {}{size}", self.who, self.file);
                }
            }
            Progress::Advance(n) => {
                self.bytes += n;
                if let Some(bar) = &self.bar {
                    bar.inc(n);
                }
            }
            Progress::Retry { attempt, error } => self.line(&format!("connection lost ({error}); retry {attempt}, resuming at {}", human_bytes(self.bytes))),
            Progress::Waiting { file } => self.line(&format!("waiting for another process fetching {file}")),
            Progress::Done { file } => {
                let seconds = self.started.elapsed().as_secs_f64();
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!("{}: fetched {file} ({} in {seconds:.1} s)", self.who, human_bytes(self.bytes - self.resumed_from));
            }
            Progress::Cached { .. } => {}
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("{}: {text}", self.who)),
            None => eprintln!("{}: {text}", self.who),
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
