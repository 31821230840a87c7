//! A progress bar counting particle-steps, and the [`Meter`] through which a front end that
//! draws its own (a notebook's callback) watches a run.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Progress of a run in particle-steps (particles × time steps), with rate and ETA.
///
/// Drawn on stderr when it is a terminal. When stderr is not a terminal (logs, batch jobs) a plain
/// line with the fraction done, rate and ETA is printed at most once a minute, and
/// [`Progress::finish`] prints one summary line with the mean rate; with `quiet` nothing is
/// printed at all. `inc` may be called from several threads. Within [`Meter::watching`] it
/// draws and prints nothing and counts into the meter instead.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    meter: Option<Arc<Meter>>,
    what: std::sync::Mutex<String>,
    total: AtomicU64,
    /// Whether the whole-run estimate was printed.
    estimated: AtomicBool,
    done: AtomicU64,
    start: Instant,
    summary: bool,
    finished: AtomicBool,
    /// Milliseconds since `start` of the last plain progress line (non-terminal stderr).
    last_line_ms: AtomicU64,
    line_every: Duration,
}

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(60);

/// `1234567.0` → `"1.23 M"`.
pub fn si(x: f64) -> String {
    let (v, unit) = if x >= 1e12 {
        (x / 1e12, " T")
    } else if x >= 1e9 {
        (x / 1e9, " G")
    } else if x >= 1e6 {
        (x / 1e6, " M")
    } else if x >= 1e3 {
        (x / 1e3, " k")
    } else {
        (x, "")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{unit}")
}

fn seconds(d: Duration) -> String {
    duration(d.as_secs_f64())
}

/// A duration in seconds as `12.3 s`, `4m05s` or `2h10m`.
pub fn duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

impl Progress {
    pub fn new(total_particle_steps: u64, what: &str, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Self::with_target(total_particle_steps, what, quiet, tty)
    }

    fn with_target(total: u64, what: &str, quiet: bool, tty: bool) -> Progress {
        let meter = WATCH.with(|w| w.borrow().clone());
        if let Some(m) = &meter {
            m.begin(total, what);
        }
        // A watched run is shown by its front end.
        let quiet = quiet || meter.is_some();
        let draw = !quiet && tty;
        let target = if draw {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template(
            "{msg} {wide_bar:.cyan/blue} {percent:>3}%  {rate}  ETA {eta}",
        )
        .expect("valid progress template")
        .progress_chars("█▉▊▋▌▍▎▏ ")
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{} particle-steps/s", si(s.per_sec()));
        });
        bar.set_style(style);
        bar.set_message(what.to_string());
        if draw {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress {
            bar,
            meter,
            what: std::sync::Mutex::new(what.to_string()),
            total: AtomicU64::new(total),
            estimated: AtomicBool::new(false),
            done: AtomicU64::new(0),
            start: Instant::now(),
            summary: !quiet && !tty,
            finished: AtomicBool::new(false),
            last_line_ms: AtomicU64::new(0),
            line_every: LINE_EVERY,
        }
    }

    /// The plain progress line, when one is due (non-terminal stderr, a `line_every` since the
    /// last); claims the slot so that only one thread prints it.
    fn due_line(&self) -> Option<String> {
        if !self.summary || self.finished.load(Ordering::Relaxed) {
            return None;
        }
        let now = self.elapsed().as_millis() as u64;
        let last = self.last_line_ms.load(Ordering::Relaxed);
        if now < last + self.line_every.as_millis() as u64 {
            return None;
        }
        self.last_line_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        let total = self.total();
        let frac = self.done() as f64 / total.max(1) as f64;
        let left = total - self.done().min(total);
        let eta = if self.rate() > 0.0 {
            seconds(Duration::from_secs_f64(left as f64 / self.rate()))
        } else {
            "—".into()
        };
        Some(format!(
            "{}: {:.1}% ({} particle-steps/s, ETA {eta})",
            self.what(),
            100.0 * frac,
            si(self.rate())
        ))
    }

    /// Count `n` more particle-steps.
    pub fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        if let Some(m) = &self.meter {
            m.done.fetch_add(n, Ordering::Relaxed);
        }
        self.bar.inc(n);
        if let Some(line) = self.due_line() {
            crate::note!("{line}");
        }
        // Once the rate is known (after a second's work), say how long the whole run will take.
        if !self.bar.is_hidden() || self.summary {
            let secs = self.elapsed().as_secs_f64();
            if secs >= 1.0 && self.rate() > 0.0 && !self.estimated.swap(true, Ordering::Relaxed) {
                let left = self.total().saturating_sub(self.done()) as f64 / self.rate();
                if left > 10.0 {
                    let line = format!(
                        "expected time: about {} more ({} particle-steps/s)",
                        duration(left),
                        si(self.rate())
                    );
                    if self.bar.is_hidden() {
                        crate::note!("{line}");
                    } else {
                        self.bar.println(line);
                    }
                }
            }
        }
    }

    /// The total particle-steps.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Removes `n` particle-steps from the total (work a resumed run skips).
    pub fn skip(&self, n: u64) {
        let total = self.total().saturating_sub(n);
        self.total.store(total, Ordering::Relaxed);
        self.bar.set_length(total);
        if let Some(m) = &self.meter {
            m.total.store(total, Ordering::Relaxed);
        }
    }

    /// Names what is counted now (a study's phase).
    pub fn phase(&self, what: &str) {
        *self.what.lock().unwrap_or_else(|e| e.into_inner()) = what.to_string();
        self.bar.set_message(what.to_string());
        if let Some(m) = &self.meter {
            m.lock().0 = what.to_string();
        }
    }

    fn what(&self) -> String {
        self.what.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Particle-steps counted so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Mean particle-steps per second since creation.
    pub fn rate(&self) -> f64 {
        self.done() as f64 / self.elapsed().as_secs_f64().max(1e-9)
    }

    /// One line: `what: 1.00 G particle-steps in 2.0 s (500 M particle-steps/s)`, plus how far it
    /// got when it stopped before the total.
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "{}: {} particle-steps in {} ({} particle-steps/s)",
            self.what(),
            si(self.done() as f64),
            seconds(self.elapsed()),
            si(self.rate())
        );
        if self.done() < self.total() {
            let pct = 100.0 * self.done() as f64 / self.total() as f64;
            let _ = write!(line, ", stopped at {pct:.1}%");
        }
        line
    }

    /// Stop the bar (leaving its last state on screen), or print the summary line when stderr
    /// is not a terminal. Idempotent; also called on drop.
    pub fn finish(&self) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        if self.summary {
            crate::note!("{}", self.summary_line());
        } else if !self.bar.is_hidden() {
            if self.done() < self.total() {
                // Stopped early: no ETA on the last line, the summary says how far it got.
                if let Ok(style) = ProgressStyle::with_template("{msg}") {
                    self.bar.set_style(style);
                }
                self.bar.abandon_with_message(self.summary_line());
            } else {
                self.bar.abandon();
            }
        }
    }
}

thread_local! {
    /// The meter of the run on this thread, if a front end watches it.
    static WATCH: RefCell<Option<Arc<Meter>>> = const { RefCell::new(None) };
}

/// A run's progress as a front end reads it while the run goes on: the particle-steps done and
/// in all of the current progress count (a study has one; a sweep one per point), what is
/// counted, and since when. Written by the [`Progress`] counts made within [`Meter::watching`].
#[derive(Debug, Default)]
pub struct Meter {
    done: AtomicU64,
    total: AtomicU64,
    /// How many counts have begun (a front end starts a new bar when it changes).
    count: AtomicU64,
    /// What is counted, and when the count began.
    state: Mutex<(String, Option<Instant>)>,
}

/// One look at a [`Meter`].
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub done: u64,
    pub total: u64,
    /// The phase counted (the study's name, `clone pairs`, …).
    pub what: String,
    /// Seconds since the count began.
    pub elapsed: f64,
    /// Which count this is (1 for the first; 0 before any began).
    pub count: u64,
}

impl Reading {
    /// Mean particle-steps per second since the count began.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.max(1e-9)
    }

    /// Seconds left at the mean rate, once there is one.
    pub fn eta(&self) -> Option<f64> {
        (self.done > 0).then(|| self.total.saturating_sub(self.done) as f64 / self.rate())
    }
}

impl Meter {
    pub fn new() -> Arc<Meter> {
        Arc::default()
    }

    /// Runs `f` (a run) on this thread with its progress counted into this meter (restoring the
    /// thread's own afterwards).
    pub fn watching<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<Meter>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                WATCH.with(|w| *w.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(WATCH.with(|w| w.replace(Some(self.clone()))));
        f()
    }

    pub fn read(&self) -> Reading {
        let (what, start) = self.lock().clone();
        Reading {
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            what,
            elapsed: start.map_or(0.0, |s| s.elapsed().as_secs_f64()),
            count: self.count.load(Ordering::Relaxed),
        }
    }

    fn begin(&self, total: u64, what: &str) {
        *self.lock() = (what.to_string(), Some(Instant::now()));
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (String, Option<Instant>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_summarises() {
        let p = Progress::with_target(1000, "speciation", false, false);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        p.inc(10)
                    }
                });
            }
        });
        assert_eq!(p.done(), 1000);
        assert!(p.rate() > 0.0);
        let line = p.summary_line();
        assert!(
            line.starts_with("speciation: 1.00 k particle-steps in "),
            "{line}"
        );
        p.finish();
        p.finish();
        // Plain lines for logs: due once per interval, never after finishing.
        let mut q = Progress::with_target(1000, "run", false, false);
        q.line_every = Duration::ZERO;
        q.done.store(250, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
        let line = q.due_line().expect("a line is due");
        assert!(
            line.starts_with("run: 25.0% (") && line.contains("ETA"),
            "{line}"
        );
        q.line_every = Duration::from_secs(3600);
        assert_eq!(q.due_line(), None, "not again within the interval");
        q.finish();
        let quiet = Progress::with_target(1000, "run", true, false);
        assert_eq!(quiet.due_line(), None);
        assert_eq!(si(1.5e9), "1.50 G");
        assert_eq!(si(12.0), "12.0");
        assert_eq!(seconds(Duration::from_secs(3725)), "1h02m");
    }

    /// Counts made within `watching` reach the meter (and draw nothing); others do not.
    #[test]
    fn a_meter_watches_the_counts_of_its_run() {
        let meter = Meter::new();
        assert_eq!(meter.read().count, 0);
        meter.watching(|| {
            let p = Progress::with_target(1000, "run", false, true);
            assert!(p.bar.is_hidden() && !p.summary);
            p.skip(200);
            p.phase("clone pairs");
            p.inc(400);
        });
        let r = meter.read();
        assert_eq!((r.done, r.total, r.count), (400, 800, 1));
        assert_eq!(r.what, "clone pairs");
        assert!(r.rate() > 0.0 && r.eta().is_some_and(|s| s > 0.0));
        Progress::with_target(10, "other", true, false).inc(10);
        assert_eq!(meter.read().done, 400);
    }
}
