//! Stopping early: a process-wide request (SIGINT, SIGTERM, SIGHUP in the CLI) and a per-run
//! request ([`Token`], the Python package's `Stop` and Ctrl-C), that measurements poll at step
//! boundaries and the long set-up loops (the theory's scans, the pruning table) poll as they go,
//! and the typed reason a run stopped. The lowest layer, so that every layer may poll it.
//!
//! A run's token is scoped to the thread that runs it ([`Token::scoped`]), so that every poll on
//! that thread sees it without a parameter through every layer; work the run hands to other
//! threads carries it along ([`scope`], [`Scope::enter`]). Two runs in one process (two Python
//! threads) thereby stop independently.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The token of the run on this thread, if its front end gave one.
    static CURRENT: RefCell<Option<Token>> = const { RefCell::new(None) };
}

/// Asks every running measurement of the process to stop at the next step boundary; what was
/// gathered so far is returned, marked as stopped early. Returns false when a stop had already
/// been requested (a front end may then end the process at once).
pub fn request_stop() -> bool {
    !STOP.swap(true, Ordering::SeqCst)
}

/// Why a measurement on this thread must stop, if it must.
pub fn stop_reason() -> Option<Stop> {
    scope().reason()
}

/// The typed stop ([`Interrupted`]) when a stop was requested on this thread, for `?` in work
/// that cannot go on after one (a cut-short judgement or scan means nothing).
pub fn unless_stopped() -> Result<(), Interrupted> {
    match stop_reason() {
        Some(_) => Err(Interrupted),
        None => Ok(()),
    }
}

/// A stop request for one run: cheap to clone (the clones share the request), settable from any
/// thread.
#[derive(Clone, Debug, Default)]
pub struct Token(Arc<AtomicBool>);

impl Token {
    pub fn new() -> Token {
        Token::default()
    }

    /// Asks the run to stop at its next step boundary. Returns false when it had already been
    /// asked.
    pub fn request(&self) -> bool {
        !self.0.swap(true, Ordering::SeqCst)
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Runs `f` (a run) on this thread with this token as its stop request.
    pub fn scoped<R>(&self, f: impl FnOnce() -> R) -> R {
        Scope(Some(self.clone())).enter(f)
    }
}

/// The stop requests that reach the run on the calling thread, to poll from (or carry to) the
/// threads it hands work to.
#[derive(Clone, Debug, Default)]
pub struct Scope(Option<Token>);

/// The calling thread's [`Scope`].
pub fn scope() -> Scope {
    Scope(CURRENT.with(|c| c.borrow().clone()))
}

impl Scope {
    /// Why the run must stop, if it must: a process-wide request first.
    pub fn reason(&self) -> Option<Stop> {
        if STOP.load(Ordering::SeqCst) {
            Some(Stop::Interrupted)
        } else if self.0.as_ref().is_some_and(Token::requested) {
            Some(Stop::Requested)
        } else {
            None
        }
    }

    /// Runs `f` on this thread within this scope (restoring the thread's own afterwards).
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Token>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(self.0.clone())));
        f()
    }
}

/// Why a measurement stopped before completing; what completed is still reported.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// A process-wide stop was requested (a signal).
    Interrupted,
    /// This run's [`Token`] was triggered.
    Requested,
    /// The engine or the measurement failed (a device error, non-finite particles).
    Failed(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Stop::Interrupted => f.write_str("interrupted by a signal (SIGINT, SIGTERM or SIGHUP)"),
            Stop::Requested => f.write_str("interrupted by a stop request for this run"),
            Stop::Failed(e) => f.write_str(e),
        }
    }
}

/// A batch cut short by a stop request.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", stop_reason().unwrap_or(Stop::Interrupted))
    }
}

impl std::error::Error for Interrupted {}

impl Stop {
    /// The stop an error means: an interrupted batch (for the reason this thread's run was
    /// asked to stop), or a failure.
    pub fn from_error(e: &anyhow::Error) -> Stop {
        if e.is::<Interrupted>() {
            stop_reason().unwrap_or(Stop::Interrupted)
        } else {
            Stop::Failed(format!("{e:#}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token stops its own run, on its thread and on the threads it carries its scope to, and
    /// no other.
    #[test]
    fn a_token_stops_its_run_only() {
        let (a, b) = (Token::new(), Token::new());
        assert!(a.request() && !a.request());
        a.scoped(|| {
            assert_eq!(stop_reason(), Some(Stop::Requested));
            let carried = scope();
            std::thread::scope(|s| {
                s.spawn(|| assert_eq!(stop_reason(), None, "a bare thread is not the run's"));
                s.spawn(|| carried.enter(|| assert_eq!(stop_reason(), Some(Stop::Requested))));
            });
            b.scoped(|| assert_eq!(stop_reason(), None));
            assert_eq!(
                stop_reason(),
                Some(Stop::Requested),
                "restored after a nested run"
            );
        });
        assert_eq!(stop_reason(), None);
    }
}
