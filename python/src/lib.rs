//! The native half of the Python package `regimes`: builds a study's config from the keys
//! `regimes/__init__.py` gives (no command-line words), checks it with the library's request
//! policy (`study::request`, as the CLI does) and runs it through the study driver with the GIL
//! released. The run stops at the next step boundary when its [`Stop`] is requested or Ctrl-C
//! arrives (this run only), and its progress is handed to a Python callable as it goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use regimes::config::keys::{Doc, Takes};
use regimes::measure::{Every, Shard, Stop as Stopped};
use regimes::report::{Meter, Reading};
use regimes::stop::Token;
use regimes::study::Kind;
use regimes::study::request::{self, Layers, Options};
use regimes::study::sweep::Axis;
use serde::Deserialize;
use serde_json::{Map, Value, json};

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

/// How often the waiting thread looks for a signal and at the progress (small beside the
/// engine's segments of about a second, at whose boundaries the run stops).
const POLL: Duration = Duration::from_millis(20);
/// The least time between two progress calls (a notebook redraws at this rate at most).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A stop request for one run: `Stop()`, passed as `stop=`, and `request()`ed from any thread
/// (a callback, a button's handler); the run ends at its next step boundary and returns what
/// completed.
#[pyclass(frozen, module = "regimes")]
struct Stop {
    token: Token,
}

#[pymethods]
impl Stop {
    #[new]
    fn new() -> Stop {
        Stop {
            token: Token::new(),
        }
    }

    /// Asks the run to stop at its next step boundary.
    fn request(&self) {
        self.token.request();
    }

    /// Whether a stop was requested.
    #[getter]
    fn requested(&self) -> bool {
        self.token.requested()
    }

    fn __repr__(&self) -> String {
        format!(
            "Stop(requested={})",
            if self.requested() { "True" } else { "False" }
        )
    }
}

/// What `regimes/__init__.py` asks for: the config's layers and the invocation's options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Asked {
    preset: Option<String>,
    config: Option<PathBuf>,
    /// Config keys (kebab-case) and their values.
    #[serde(default)]
    keys: Map<String, Value>,
    out: Option<PathBuf>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    quiet: bool,
    shard: Option<String>,
    checkpoint_every: Option<String>,
    devices: Option<String>,
    /// A sweep's axes: key → values.
    #[serde(default)]
    over: Map<String, Value>,
}

impl Asked {
    fn layers(&self) -> Result<Layers<'_>> {
        Ok(Layers {
            preset: self.preset.as_deref(),
            file: self.config.as_deref(),
            keys: typed(&self.keys)?,
            source: "keyword arguments",
        })
    }

    fn options(&self, layers: &Layers) -> Result<Options> {
        Ok(Options {
            out: self.out.clone(),
            force: self.force,
            quiet: self.quiet,
            shard: parse::<Shard>("shard", &self.shard)?,
            every: parse::<Every>("checkpoint_every", &self.checkpoint_every)?,
            devices: self.devices.clone(),
            given: layers.given(),
            file_keys: layers.file_keys(),
        })
    }
}

fn parse<T: std::str::FromStr<Err = String>>(
    name: &str,
    text: &Option<String>,
) -> Result<Option<T>> {
    text.as_deref()
        .map(|t| {
            t.parse::<T>()
                .map_err(|e| anyhow::anyhow!("{name}={t:?}: {e}"))
        })
        .transpose()
}

/// The keys as the config reads them: a whole number given as a float (`1e6`) where the key
/// counts, and a figure size given as text (`"860x540"`).
fn typed(keys: &Map<String, Value>) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in keys {
        let reads = |v: &Value| {
            let one = Map::from_iter([(k.clone(), v.clone())]);
            regimes::config::Config::default()
                .overlay(one, "keyword arguments")
                .is_ok()
        };
        let v = match v {
            Value::Number(n) if n.is_f64() && !reads(v) => match n.as_f64() {
                Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => json!(x as i64),
                _ => v.clone(),
            },
            Value::String(s) if k == "figure-size" => {
                let (w, h) = regimes::report::parse_figure_size(s)
                    .map_err(|e| anyhow::anyhow!("figure_size={s:?}: {e}"))?;
                json!([w, h])
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// The run a front end asked for, checked.
enum Run {
    Study(regimes::study::driver::Request),
    Sweep(regimes::study::sweep::SweepRequest),
}

/// `command` ("theory", "run", "speciation", "collapse", or "sweep:STUDY") with `asked`, its
/// config resolved and checked as the CLI checks it, and what the driver refuses only once it
/// has started (the model a study's settings build) checked too.
fn prepare(command: &str, asked: &Asked) -> Result<Run> {
    let layers = asked.layers()?;
    let opts = asked.options(&layers)?;
    match command.strip_prefix("sweep:") {
        Some(study) => {
            let kind = request::sweep_kind(study)?;
            let base = layers.resolve_without(&["over"])?;
            let over = asked
                .over
                .iter()
                .map(|(key, values)| Axis {
                    key: key.clone(),
                    values: match values {
                        Value::Array(v) => v.clone(),
                        one => vec![one.clone()],
                    },
                })
                .collect();
            let axes = layers.axes(over)?;
            Ok(Run::Sweep(request::sweep(kind, base, &axes, opts)?))
        }
        None => {
            let kind = Kind::from_name(command)?;
            let req = request::study(kind, layers.resolve()?, opts)?;
            regimes::config::build::build(&req.cfg)?;
            Ok(Run::Study(req))
        }
    }
}

fn run(run: Run) -> Result<Value> {
    Ok(match run {
        Run::Study(req) => {
            let r = regimes::study::driver::run(&req)?;
            json!({
                "kind": "study",
                "summary": r.summary,
                "table": r.table,
                "out": r.out.map(|p| p.display().to_string()),
                "files": r.files,
                "stopped": r.stopped.as_ref().map(Stopped::to_string),
                "resumable": r.resumable,
                "write_error": r.write_error.map(|e| format!("{e:#}")),
            })
        }
        Run::Sweep(req) => {
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
    })
}

/// Checks and runs `command` with `asked` (JSON: the config's layers and the options), and
/// returns what it produced as JSON text: `kind` and the report's fields. `progress`, when
/// given, is called on this thread as `progress(done, total, rate, eta, what, count)`; `stop`
/// (a [`Stop`]) stops the run when requested.
#[pyfunction]
#[pyo3(signature = (command, asked, progress=None, stop=None))]
fn study(
    py: Python<'_>,
    command: &str,
    asked: &str,
    progress: Option<Py<PyAny>>,
    stop: Option<Py<Stop>>,
) -> PyResult<String> {
    let config_error = |e: anyhow::Error| ConfigError::new_err(message(&e));
    let asked: Asked = serde_json::from_str(asked)
        .map_err(|e| ConfigError::new_err(format!("bad request from the package: {e}")))?;
    let prepared = prepare(command, &asked).map_err(config_error)?;
    let token = match &stop {
        Some(s) => s.get().token.clone(),
        None => Token::new(),
    };
    // Watched, the run draws no bar of its own: `progress` shows it.
    let meter = progress.as_ref().map(|_| Meter::new());
    let work = {
        let (token, meter) = (token.clone(), meter.clone());
        move || {
            token.scoped(|| match meter {
                Some(m) => m.watching(|| run(prepared)),
                None => run(prepared),
            })
        }
    };
    let watch = meter.as_ref().zip(progress.as_ref());
    let (outcome, raised) = run_watched(py, work, &token, watch)?;
    if let Some(e) = raised {
        return Err(e);
    }
    let mut outcome = outcome.map_err(|e| RunError::new_err(message(&e)))?;
    // Stopped because its Stop was requested: the caller asked for the partial result.
    outcome["requested"] = json!(token.requested());
    Ok(outcome.to_string())
}

/// A documented keyword as the docstrings read it: (name, value name, heading, help, choices);
/// the value name is empty for a switch.
type Documented = (String, String, String, String, Vec<String>);

fn documented(docs: Vec<Doc>) -> Vec<Documented> {
    docs.into_iter()
        .map(|d| {
            let (value, choices) = match d.takes {
                Takes::Switch => (String::new(), vec![]),
                Takes::Value { name, choices } => (name, choices),
            };
            (d.name, value, d.heading, d.help, choices)
        })
        .collect()
}

/// The config keys `study` reads (every key without one: a sweep's), documented, for the
/// docstrings.
#[pyfunction]
#[pyo3(signature = (study=None))]
fn keys(study: Option<&str>) -> PyResult<Vec<Documented>> {
    let kind = study
        .map(Kind::from_name)
        .transpose()
        .map_err(|e| ConfigError::new_err(message(&e)))?;
    Ok(documented(regimes::study::keys::documented(kind)))
}

/// The bench's long description and its options, documented, for its docstring.
#[pyfunction]
fn bench_keys() -> (String, Vec<Documented>) {
    (
        regimes::bench::args::long_about(),
        documented(regimes::bench::args::documented()),
    )
}

/// The presets: (name, description).
#[pyfunction]
fn presets() -> Vec<(String, String)> {
    regimes::config::PRESETS
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect()
}

/// Runs the bench `options` ask for (JSON: its keys, kebab-case, as the CLI's flags) and returns
/// its records and header as JSON text.
#[pyfunction]
#[pyo3(name = "bench")]
fn run_bench(py: Python<'_>, options: &str) -> PyResult<String> {
    let config_error = |e: anyhow::Error| ConfigError::new_err(message(&e));
    let options: regimes::bench::run::Options = serde_json::from_str(options)
        .map_err(|e| ConfigError::new_err(format!("keyword arguments: {e}")))?;
    options.validate().map_err(config_error)?;
    let token = Token::new();
    let work = {
        let token = token.clone();
        move || token.scoped(|| regimes::bench::run::run(&options))
    };
    let (outcome, raised) = run_watched(py, work, &token, None)?;
    if let Some(e) = raised {
        return Err(e);
    }
    let r = outcome.map_err(|e| RunError::new_err(message(&e)))?;
    Ok(json!({
        "kind": "bench",
        "records": r.records,
        "header": r.header,
        "exported": r.exported,
    })
    .to_string())
}

/// Runs `work` on a thread of its own while this one, with the GIL released between looks,
/// hands the run's progress to `progress` and watches for signals: a KeyboardInterrupt (or any
/// exception a Python signal handler or `progress` raises) requests this run's stop, and is
/// returned beside what `work` then completed.
fn run_watched<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> T + Send,
    token: &Token,
    watch: Option<(&Arc<Meter>, &Py<PyAny>)>,
) -> PyResult<(T, Option<PyErr>)> {
    let mut raised = None;
    let mut shown: Option<(Reading, Instant)> = None;
    let mut show = |py: Python<'_>, last: bool| -> PyResult<()> {
        let Some((meter, f)) = watch else {
            return Ok(());
        };
        let r = meter.read();
        if r.count == 0 {
            return Ok(());
        }
        let due = match &shown {
            None => true,
            Some((before, at)) => {
                *before != r && (last || r.count != before.count || at.elapsed() >= PROGRESS_EVERY)
            }
        };
        if due {
            let eta = r.eta();
            f.call1(
                py,
                (r.done, r.total, r.rate(), eta, r.what.clone(), r.count),
            )?;
            shown = Some((r, Instant::now()));
        }
        Ok(())
    };
    let done = thread::scope(|s| {
        let worker = s.spawn(work);
        while !worker.is_finished() {
            py.detach(|| thread::sleep(POLL));
            if raised.is_none() {
                let looked = py.check_signals().and_then(|()| show(py, false));
                if let Err(e) = looked {
                    token.request();
                    raised = Some(e);
                }
            }
        }
        worker.join()
    });
    if raised.is_none()
        && let Err(e) = show(py, true)
    {
        raised = Some(e);
    }
    match done {
        Ok(v) => Ok((v, raised)),
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

/// Every key of `config::keys::KEYS`, as (name, section, file): `file` is "spec" for a key
/// whose spec may name a file (`file:PATH`), "path" for a key whose value is a path, "" for
/// the others (found by setting each key to a probe and reading it back through its
/// declaration's file accessor), so the package takes an array wherever a key reads a file.
#[pyfunction]
fn config_keys() -> Vec<(String, String, String)> {
    const PROBE: &str = "probe.npy";
    regimes::config::keys::KEYS
        .iter()
        .map(|k| {
            let names = |value: String| {
                let one = Map::from_iter([(k.name.to_string(), Value::String(value))]);
                regimes::config::Config::default()
                    .overlay(one, "probe")
                    .ok()
                    .is_some_and(|c| (k.file)(&c) == Some(std::path::Path::new(PROBE)))
            };
            let file = if names(format!("file:{PROBE}")) {
                "spec"
            } else if names(PROBE.to_string()) {
                "path"
            } else {
                ""
            };
            let section = format!("{:?}", k.section).to_lowercase();
            (k.name.to_string(), section, file.to_string())
        })
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(study, m)?)?;
    m.add_function(wrap_pyfunction!(run_bench, m)?)?;
    m.add_function(wrap_pyfunction!(keys, m)?)?;
    m.add_function(wrap_pyfunction!(bench_keys, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(config_keys, m)?)?;
    m.add_class::<Stop>()?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add("RunError", m.py().get_type::<RunError>())?;
    Ok(())
}
