//! The native half of the Python package `regimes`: runs an invocation (the command line that
//! `regimes/__init__.py` builds from keyword arguments) through the library's study driver, with
//! the GIL released, and turns Ctrl-C into a stop request at the next step boundary.

use std::thread;
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use regimes::cli::Invocation;
use regimes::measure::Stop;
use regimes::stop;
use serde_json::{Value, json};

create_exception!(
    regimes,
    ConfigError,
    PyException,
    "A setting was refused before any work started (the message is the CLI's)."
);
create_exception!(
    regimes,
    RunError,
    PyException,
    "A run failed or stopped early after it started (device error, non-finite particles, an \
     output file that could not be written); `.result`, when set, holds what completed."
);

/// How often the waiting thread looks for a signal (small beside the engine's segments of about
/// a second, at whose boundaries the run stops).
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// Parses and checks `words` as the CLI would (raising ConfigError with its message), runs them,
/// and returns what the run produced as JSON text: `kind` ("study", "sweep" or "bench") and the
/// report's fields.
#[pyfunction]
fn invoke(py: Python<'_>, words: Vec<String>) -> PyResult<String> {
    let inv = regimes::cli::invocation(&words).map_err(|e| ConfigError::new_err(message(&e)))?;
    check(&inv).map_err(|e| ConfigError::new_err(message(&e)))?;
    let (outcome, signal) = run_interruptible(py, move || run(inv))?;
    if let Some(e) = signal {
        return Err(e);
    }
    let outcome = outcome.map_err(|e| RunError::new_err(message(&e)))?;
    Ok(outcome.to_string())
}

/// The `--help` text of a command, for the docstrings.
#[pyfunction]
fn long_help(command: &str) -> Option<String> {
    regimes::cli::long_help(command)
}

/// What the driver refuses only once it has started, checked first so that it is a config
/// error: the model a study's settings build, and bench's settings.
fn check(inv: &Invocation) -> anyhow::Result<()> {
    match inv {
        Invocation::Study(req) => regimes::config::build::build(&req.cfg).map(drop),
        Invocation::Sweep(_) => Ok(()),
        Invocation::Bench(args) => args.validate(),
    }
}

fn run(inv: Invocation) -> anyhow::Result<Value> {
    Ok(match inv {
        Invocation::Study(req) => {
            let r = regimes::study::driver::run(&req)?;
            json!({
                "kind": "study",
                "summary": r.summary,
                "table": r.table,
                "out": r.out.map(|p| p.display().to_string()),
                "files": r.files,
                "stopped": r.stopped.as_ref().map(Stop::to_string),
                "resumable": r.resumable,
                "write_error": r.write_error.map(|e| format!("{e:#}")),
            })
        }
        Invocation::Sweep(req) => {
            let r = regimes::study::sweep::run(&req)?;
            json!({
                "kind": "sweep",
                "summary": r.summary,
                "table": r.table,
                "out": r.out.display().to_string(),
                "files": r.files,
                "stopped": r.stopped,
            })
        }
        Invocation::Bench(args) => {
            let r = regimes::cli::bench::run(&args)?;
            json!({
                "kind": "bench",
                "records": r.records,
                "header": r.header,
                "exported": r.exported,
            })
        }
    })
}

/// Runs `work` on a thread of its own while this one, with the GIL released between looks,
/// watches for signals: a KeyboardInterrupt (or any exception a Python signal handler raises)
/// requests a stop, and is returned beside what `work` then completed.
fn run_interruptible<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> T + Send,
) -> PyResult<(T, Option<PyErr>)> {
    let mut signal = None;
    let done = thread::scope(|s| {
        let worker = s.spawn(work);
        while !worker.is_finished() {
            py.detach(|| thread::sleep(SIGNAL_POLL));
            if signal.is_none()
                && let Err(e) = py.check_signals()
            {
                stop::request_stop();
                signal = Some(e);
            }
        }
        worker.join()
    });
    // The request was this run's; the next one starts afresh.
    if signal.is_some() {
        stop::clear_stop();
    }
    match done {
        Ok(v) => Ok((v, signal)),
        Err(_) => Err(RunError::new_err(
            "the run panicked (a bug in regimes; please report it with its settings)",
        )),
    }
}

/// An error as the CLI prints it, without its `error: ` prefix and clap's pointer to `--help`.
fn message(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = text
        .trim_end()
        .trim_end_matches("For more information, try '--help'.")
        .trim_end();
    text.to_string()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(invoke, m)?)?;
    m.add_function(wrap_pyfunction!(long_help, m)?)?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add("RunError", m.py().get_type::<RunError>())?;
    Ok(())
}
