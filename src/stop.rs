//! Stopping early: a process-wide request (SIGINT, SIGTERM, SIGHUP in the front ends) that
//! measurements poll at step boundaries and the long set-up loops (the theory's scans, the
//! pruning table) poll as they go, and the typed reason a run stopped. The lowest layer, so that
//! every layer may poll it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks running measurements to stop at the next step boundary; what was gathered so far is
/// returned, marked as stopped early. Returns false when a stop had already been requested (a
/// front end may then end the process at once).
pub fn request_stop() -> bool {
    !STOP.swap(true, Ordering::SeqCst)
}

/// Withdraws a stop request, so that the next measurement runs: for front ends that live on
/// after a stopped run (the Python package, after a KeyboardInterrupt).
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}

/// Why a measurement must stop, if it must.
pub fn stop_reason() -> Option<Stop> {
    STOP.load(Ordering::SeqCst).then_some(Stop::Interrupted)
}

/// Why a measurement stopped before completing; what completed is still reported.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// A stop was requested (a signal).
    Interrupted,
    /// The engine or the measurement failed (a device error, non-finite particles).
    Failed(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Stop::Interrupted => f.write_str("interrupted by a signal (SIGINT, SIGTERM or SIGHUP)"),
            Stop::Failed(e) => f.write_str(e),
        }
    }
}

/// A batch cut short by a stop request.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", Stop::Interrupted)
    }
}

impl std::error::Error for Interrupted {}

impl Stop {
    /// The stop an error means: an interrupted batch, or a failure.
    pub fn from_error(e: &anyhow::Error) -> Stop {
        if e.is::<Interrupted>() {
            Stop::Interrupted
        } else {
            Stop::Failed(format!("{e:#}"))
        }
    }
}
