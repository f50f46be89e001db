//! What long commands show while they work, in one place: an indicatif bar on a terminal, a
//! plain line at most every [`LINE_INTERVAL`] (and one at the end) when stderr is a file or a
//! pipe, and nothing under `--quiet` (results still go to stdout; warnings and errors still go
//! to stderr). Libraries report through callbacks (clip-eval's `Progress`, clip-train's `Event`,
//! clip-hub's `Progress`); the commands turn those into a [`Bar`].

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The least time between two progress lines when stderr is not a terminal.
pub(crate) const LINE_INTERVAL: Duration = Duration::from_secs(5);

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: no bars, no progress lines, no notices.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A notice on stderr (what is happening, where files went), unless `--quiet`.
pub(crate) fn note(text: &str) {
    if !quiet() {
        eprintln!("{text}");
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An indicatif bar, redrawn in place.
    Bar,
    /// Plain lines, rate-limited.
    Lines,
    /// Nothing (`--quiet`).
    Off,
}

/// The mode for this process: off under `--quiet`, a bar when stderr is a terminal, else lines.
pub(crate) fn mode() -> Mode {
    if quiet() {
        Mode::Off
    } else if std::io::stderr().is_terminal() {
        Mode::Bar
    } else {
        Mode::Lines
    }
}

/// What a bar counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// Things, named (`images`, `steps`).
    Count(&'static str),
    /// Bytes, shown in decimal units.
    Bytes,
}

/// One task's progress: a bar, rate-limited lines, or nothing, by [`mode`].
pub(crate) struct Bar {
    mode: Mode,
    bar: Option<ProgressBar>,
    label: String,
    unit: Unit,
    total: Option<u64>,
    position: u64,
    start_position: u64,
    message: String,
    started: Instant,
    last_line: Instant,
    finished: bool,
}

impl Bar {
    /// A bar for `label` out of `total` (a spinner when the total is unknown), starting at 0.
    pub(crate) fn new(label: impl Into<String>, total: Option<u64>, unit: Unit) -> Self {
        Self::with_mode(mode(), label, total, unit)
    }

    /// [`Bar::new`] in a given mode.
    pub(crate) fn with_mode(mode: Mode, label: impl Into<String>, total: Option<u64>, unit: Unit) -> Self {
        let label = label.into();
        let bar = (mode == Mode::Bar).then(|| {
            let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            let counts = match (unit, total) {
                (Unit::Bytes, Some(_)) => "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}".to_owned(),
                (Unit::Bytes, None) => "{spinner} {bytes} {bytes_per_sec} {elapsed}".to_owned(),
                (Unit::Count(what), Some(_)) => format!("[{{bar:30}}] {{pos}}/{{len}} {what} {{per_sec}} ETA {{eta}}"),
                (Unit::Count(what), None) => format!("{{spinner}} {{pos}} {what} {{per_sec}} {{elapsed}}"),
            };
            let style = ProgressStyle::with_template(&format!("{{prefix}} {counts} {{msg}}"))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let now = Instant::now();
        Self { mode, bar, label, unit, total, position: 0, start_position: 0, message: String::new(), started: now, last_line: now, finished: false }
    }

    /// Where the count starts (a resumed download, a resumed run): rates count from here.
    pub(crate) fn start_at(&mut self, position: u64) {
        (self.position, self.start_position) = (position, position);
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.reset_eta();
        }
    }

    /// The count so far.
    pub(crate) fn set_position(&mut self, position: u64) {
        self.position = position;
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
        self.maybe_line();
    }

    /// Adds to the count.
    pub(crate) fn inc(&mut self, n: u64) {
        self.set_position(self.position + n);
    }

    /// Text after the counts (`loss 2.31 lr 1e-3`).
    pub(crate) fn set_message(&mut self, message: impl Into<String>) {
        self.message = message.into();
        if let Some(bar) = &self.bar {
            bar.set_message(self.message.clone());
        }
    }

    /// A notice above the bar (or on its own line), unless `--quiet`.
    pub(crate) fn println(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(text),
            (None, Mode::Lines) => eprintln!("{text}"),
            _ => {}
        }
    }

    /// A warning above the bar: shown even under `--quiet`.
    pub(crate) fn warn(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Ends the bar: a terminal's bar is cleared, and one closing line says what was done.
    pub(crate) fn finish(&mut self) {
        let line = format!("{}: {} in {:.1} s{}", self.label, self.counts(), self.started.elapsed().as_secs_f64(), self.tail());
        self.finish_with(&line);
    }

    /// Ends the bar with `line` as its closing line.
    pub(crate) fn finish_with(&mut self, line: &str) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Off {
            eprintln!("{line}");
        }
    }

    /// What the bar is about.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Seconds since the bar began.
    pub(crate) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn tail(&self) -> String {
        if self.message.is_empty() { String::new() } else { format!(", {}", self.message) }
    }

    fn counts(&self) -> String {
        let amount = |n: u64| match self.unit {
            Unit::Bytes => crate::hub::human_bytes(n),
            Unit::Count(what) => format!("{n} {what}"),
        };
        match self.total {
            Some(total) => match self.unit {
                Unit::Bytes => format!("{} of {}", amount(self.position), amount(total)),
                Unit::Count(what) => format!("{}/{total} {what}", self.position),
            },
            None => amount(self.position),
        }
    }

    /// In line mode, a line when [`LINE_INTERVAL`] has passed since the last one.
    fn maybe_line(&mut self) {
        if self.mode != Mode::Lines || self.last_line.elapsed() < LINE_INTERVAL {
            return;
        }
        self.last_line = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64();
        let done = self.position.saturating_sub(self.start_position) as f64;
        let rate = done / seconds.max(1e-9);
        let rate_text = match self.unit {
            Unit::Bytes => format!("{}/s", crate::hub::human_bytes(rate as u64)),
            Unit::Count(what) => format!("{rate:.1} {what}/s"),
        };
        let eta = match self.total {
            Some(total) if rate > 0.0 => format!(", ETA {:.0} s", total.saturating_sub(self.position) as f64 / rate),
            _ => String::new(),
        };
        eprintln!("{}: {} ({rate_text}{eta}){}", self.label, self.counts(), self.tail());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // An error unwinding past a bar clears it, without a closing line.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
