//! The one driver of every study: a fresh run, a resumed one, shards merged, or slices on
//! several devices. Each is set-up → parts (measured on an engine, on devices, or read from
//! shards) → summarise → files → the summary envelope; the phase sequence lives in
//! [`Session::phase`], the study dispatch in [`Kind::dispatch`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail, ensure};
use serde::Serialize;

use super::backend::{Selected, select_engine};
use super::shard::{SHARD_FILE, ShardFile, check_shards};
use super::store::{CheckpointFile, Store};
use super::{Inputs, Kind, LABELS, Parts, SAMPLES, Session, Study, Visit};
use crate::config::Config;
use crate::engine::Engine;
use crate::measure::{Every, Shard, Stop};
use crate::report::OutDir;

/// One invocation of a study: from a front end's options, or from a checkpoint to resume.
#[derive(Clone)]
pub struct Request {
    pub kind: Kind,
    pub cfg: Config,
    pub out: Option<PathBuf>,
    /// Write into a non-empty `out`.
    pub force: bool,
    pub quiet: bool,
    pub shard: Option<Shard>,
    pub every: Option<Every>,
    /// `--devices`: one slice per GPU adapter.
    pub devices: Option<String>,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Warnings found before the study started (settings it ignores, …).
    pub warnings: Vec<String>,
}

impl Request {
    /// A plain run of `kind` on `cfg`: no output directory, shard or checkpoint.
    pub fn new(kind: Kind, cfg: Config) -> Request {
        Request {
            kind,
            cfg,
            out: None,
            force: false,
            quiet: false,
            shard: None,
            every: None,
            devices: None,
            resume: false,
            warnings: vec![],
        }
    }
}

/// What a study produced, for a front end to print.
pub struct Report {
    /// The summary envelope (what `summary.json` holds).
    pub summary: serde_json::Value,
    /// The human summary.
    pub table: String,
    /// The output directory and the files written into it.
    pub out: Option<PathBuf>,
    pub files: Vec<String>,
    /// Why the study stopped before completing (its results cover what completed).
    pub stopped: Option<Stop>,
    /// The run left a checkpoint to resume from.
    pub resumable: bool,
    /// A file of the output directory could not be written: the summary above is the only
    /// copy of the result (the front end must show it).
    pub write_error: Option<anyhow::Error>,
}

/// The version of the summary's keys: 2 made statistics over no samples null, added the
/// measured headlines' errors and named the fields of tuples.
pub const SCHEMA_VERSION: u32 = 2;

/// The common envelope of every summary.
#[derive(Serialize)]
struct Summary<'a, T: Serialize> {
    /// The version of these keys (README, Outputs).
    schema_version: u32,
    command: &'a str,
    version: &'a str,
    seed: u64,
    backend: String,
    wall_seconds: f64,
    /// GPU shader compilation (JIT) time, kept apart from the run's wall time.
    shader_compile_seconds: Option<f64>,
    /// The GPU step-kernel variant of each plan shape the study ran and how it was chosen
    /// (`onchip (forced)`, `blocked (probe: …)`); null on the CPU and for merged shards.
    gpu_variant: Option<String>,
    /// Set when the run stopped before completing; counts in the result are what completed.
    stopped_early: Option<String>,
    /// The fraction of this run's work (its slice, for a shard) the results hold.
    fraction_done: f64,
    /// The slice this run measured (`--shard I/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    /// The shard directories `regimes merge` combined, in shard order.
    #[serde(skip_serializing_if = "Option::is_none")]
    merged_from: Option<Vec<String>>,
    warnings: &'a [String],
    config: &'a Config,
    #[serde(flatten)]
    result: T,
}

/// Where a study's parts come from.
enum Source {
    /// Measured here, on the engine the config selects.
    Engine,
    /// Measured on several GPU adapters (`--devices`).
    Devices(String),
    /// Read from shard directories (`merge`).
    Shards(Vec<(PathBuf, ShardFile)>),
}

/// Runs the study `req` names and writes its outputs.
pub fn run(req: &Request) -> Result<Report> {
    let source = match &req.devices {
        Some(spec) => Source::Devices(spec.clone()),
        None => Source::Engine,
    };
    req.kind.dispatch(Drive {
        req,
        source,
        engine: None,
    })
}

/// Runs `req` as [`run`] does, on an engine already selected (a sweep's points share one
/// engine, so a GPU compiles its pipelines once); `req.devices` is not read.
pub fn run_on(req: &Request, engine: &Selected) -> Result<Report> {
    req.kind.dispatch(Drive {
        req,
        source: Source::Engine,
        engine: Some(engine),
    })
}

/// The request that continues the interrupted run in `dir` from its last checkpoint.
pub fn resume_request(dir: &Path, quiet: bool) -> Result<Request> {
    let file = Store::read_file(dir)?;
    let kind = Kind::from_name(&file.command)?;
    file.config.validate()?;
    // The files the run reads must be those it started with.
    let now = super::fingerprint::config_hash(&file.command, &file.config);
    ensure!(
        now == file.config_hash,
        "{}: the study changed since the run started (config hash {} then, {now} now): a file \
         it reads ({}) has other contents, or this is another version of regimes; restore them \
         or start the run again",
        dir.display(),
        file.config_hash,
        super::shard::input_names(&file.config)
    );
    Ok(Request {
        kind,
        cfg: file.config,
        out: Some(dir.to_path_buf()),
        force: false,
        quiet,
        shard: file.shard,
        every: Some(file.every),
        devices: None,
        resume: true,
        warnings: vec![],
    })
}

/// `merge`: the shard directories `dirs` folded in shard order and reported into `out` by the
/// code that reports an unsharded run.
pub fn merge(dirs: &[PathBuf], out: &Path, force: bool, quiet: bool) -> Result<Report> {
    let mut shards = dirs
        .iter()
        .map(|d| ShardFile::read(d).map(|f| (d.clone(), f)))
        .collect::<Result<Vec<_>>>()?;
    check_shards(&mut shards)?;
    // Merging into a shard's directory would replace the shard's files.
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some((d, _)) = shards.iter().find(|(d, _)| same(d, out)) {
        bail!(
            "--out {} is the shard directory {}; give the merge a directory of its own",
            out.display(),
            d.display()
        );
    }
    let first = &shards[0].1;
    let req = Request {
        out: Some(out.to_path_buf()),
        force,
        quiet,
        ..Request::new(Kind::from_name(&first.command)?, first.config.clone())
    };
    req.kind.dispatch(Drive {
        req: &req,
        source: Source::Shards(shards),
        engine: None,
    })
}

/// Measures a study on `engine` with no output directory (what `reproduce` and other library
/// callers use): the result, and the session (warnings, the stop).
pub fn measure_on<S: Study, E: Engine>(
    inputs: &Inputs,
    engine: &E,
) -> Result<(S::Output, Session)> {
    let mut session = Session::new(inputs.quiet);
    let setup = setup_or_stop::<S>(inputs, &mut session)?;
    let parts = if S::MEASURES {
        measure_with_progress::<S, E>(inputs, &setup, engine, &mut session)?
    } else {
        Parts::default()
    };
    Ok((S::summarise(inputs, &setup, &parts)?, session))
}

struct Drive<'a> {
    req: &'a Request,
    source: Source,
    /// An engine selected by the caller ([`run_on`]); None: the config's.
    engine: Option<&'a Selected>,
}

impl Visit for Drive<'_> {
    type Out = Result<Report>;

    fn visit<S: Study>(self) -> Result<Report> {
        drive::<S>(self.req, self.source, self.engine)
    }
}

fn drive<S: Study>(req: &Request, source: Source, given: Option<&Selected>) -> Result<Report> {
    let name = S::KIND.name();
    let mut inputs = Inputs::new(S::KIND, req.cfg.clone(), req.quiet)?;
    inputs.shard = req.shard;
    // --force over an interrupted run discards its checkpoint: say so.
    let discarded: Vec<String> = match (&req.out, req.resume, req.force) {
        (Some(p), false, true)
            if p.join(crate::report::CHECKPOINT_DIR)
                .join("state.json")
                .exists() =>
        {
            vec![format!(
                "--force discards the checkpoint of the interrupted run in {} (`regimes resume \
                 {}` would have continued it)",
                p.display(),
                p.display()
            )]
        }
        _ => vec![],
    };
    // A resume whose checkpoint cannot be read is refused before the directory is taken over
    // (reopening rewrites its manifest).
    if let (Some(p), true) = (&req.out, req.resume) {
        Store::read(p)?;
    }
    // Refuse a bad --out before any work is done.
    let out = match (&req.out, req.resume) {
        (Some(p), true) => Some(OutDir::reopen(p, name)?),
        (Some(p), false) => Some(OutDir::create_for(p, req.force, name)?),
        (None, _) => None,
    };
    let mut session = Session::new(req.quiet);
    session.warn_all(&req.warnings);
    session.warn_all(&discarded);
    let mut started = Instant::now();
    let mut shader_compile_seconds = None;
    let mut merged_from = None;
    let mut gpu_variant = None;
    let measured = (|| -> Result<(S::Setup, Parts, String)> {
        if !S::MEASURES {
            let setup = setup_or_stop::<S>(&inputs, &mut session)?;
            return Ok((setup, Parts::default(), "none".to_string()));
        }
        match source {
            Source::Engine => {
                let owned;
                let engine = match given {
                    Some(e) => e,
                    None => {
                        owned = select_engine(&inputs.cfg, inputs.quiet)?;
                        if let Some(s) = owned.compile_seconds() {
                            shader_compile_seconds = Some(s);
                            started = Instant::now();
                        }
                        &owned
                    }
                };
                if let (Some(every), Some(out)) = (req.every, &out) {
                    if req.resume {
                        let (store, snaps) = Store::open(out.path())?;
                        session.set_store(store, snaps);
                    } else {
                        let file = CheckpointFile::new(name, &inputs.cfg, inputs.shard, every);
                        session.set_store(Store::create(out.path(), file)?, vec![]);
                    }
                }
                let setup = timed_setup::<S>(&inputs, &mut session)?;
                let parts = match engine {
                    Selected::Cpu(e) => on_engine::<S, _>(&inputs, &setup, e, &mut session),
                    Selected::Gpu(e) => {
                        e.clear_used();
                        let parts = on_engine::<S, _>(&inputs, &setup, e.as_ref(), &mut session);
                        gpu_variant = e.used_variants();
                        parts
                    }
                }?;
                let backend = match engine {
                    Selected::Cpu(e) => e.describe(),
                    Selected::Gpu(e) => e.describe(),
                };
                Ok((setup, parts, backend))
            }
            Source::Devices(spec) => {
                let setup = timed_setup::<S>(&inputs, &mut session)?;
                let (parts, backend, variants) =
                    super::devices::on_devices::<S>(&inputs, &setup, &spec, &mut session)?;
                gpu_variant = variants;
                Ok((setup, parts, backend))
            }
            Source::Shards(shards) => {
                let setup = setup_or_stop::<S>(&inputs, &mut session)?;
                let (parts, backend, wall) = super::shard::fold_shards(&shards)?;
                let dirs = shards
                    .iter()
                    .map(|(d, _)| d.display().to_string())
                    .collect();
                merged_from = Some((dirs, wall));
                Ok((setup, parts, backend))
            }
        }
    })();
    let (setup, parts, backend) = match measured {
        Ok(m) => m,
        Err(e) => {
            if let (Some(out), false) = (&out, req.resume) {
                Store::discard_if_unused(out.path());
            }
            return Err(e);
        }
    };
    // A merge took the shards' time.
    let wall_seconds = match &merged_from {
        Some((_, wall)) => *wall,
        None => started.elapsed().as_secs_f64(),
    };
    let output = S::summarise(&inputs, &setup, &parts)?;
    let fraction_done = S::done(&inputs, &setup, &parts);
    // Merged shards are the whole study, or not a merge.
    ensure!(
        merged_from.is_none() || fraction_done == 1.0,
        "merge: the shards hold {:.4} % of the study's work, not all of it: their counts do not \
         add up to the study's particles or pairs (a shard.json was edited, or belongs to a \
         study of another size)",
        100.0 * fraction_done
    );
    // A partial run says so in its table, its summary and its figures.
    let partial = session
        .stopped
        .as_ref()
        .map(|stop| format!("{:.1} % of the study done ({stop})", 100.0 * fraction_done));
    // The result exists now: a file that cannot be written loses nothing, the summary still
    // reaches the front end.
    let mut write_error = None;
    if let Some(dir) = &out {
        let shard_file = match (inputs.shard, &session.stopped) {
            (Some(shard), None) => Some(ShardFile::new(
                name,
                shard,
                &inputs.cfg,
                &backend,
                wall_seconds,
                parts.clone(),
            )),
            _ => None,
        };
        let written =
            S::write(&inputs, &setup, &output, &parts, dir, partial.as_deref()).and_then(|()| {
                match shard_file {
                    Some(mut f) => {
                        // The data files beside it are part of the shard: merge checks them
                        // against the hash the output directory recorded as it wrote them.
                        if parts.samples.is_some() {
                            for name in [SAMPLES, LABELS] {
                                let hash = dir.hash_of(name).ok_or_else(|| {
                                    anyhow::anyhow!("{name} was not written beside the shard")
                                })?;
                                f.files.insert(name.into(), hash);
                            }
                        }
                        dir.write_json(SHARD_FILE, &f.sealed()?).map(drop)
                    }
                    None => Ok(()),
                }
            });
        write_error = written.err();
    }
    let summary = Summary {
        schema_version: SCHEMA_VERSION,
        command: name,
        version: env!("CARGO_PKG_VERSION"),
        seed: inputs.cfg.seed,
        backend,
        wall_seconds,
        shader_compile_seconds,
        gpu_variant,
        stopped_early: session.stopped.as_ref().map(Stop::to_string),
        fraction_done,
        shard: inputs.shard.map(|s| s.to_string()),
        merged_from: merged_from.map(|(dirs, _)| dirs),
        warnings: &session.warnings,
        config: &inputs.cfg,
        result: &output,
    };
    let summary = serde_json::to_value(&summary)?;
    let resumable = session.checkpointing();
    // The summary is written even when a study file was not; the run is complete in its
    // manifest only when every file landed.
    if let Some(dir) = &out {
        let summary_written = dir.write_json("summary.json", &summary).map(drop);
        let finished = match (&write_error, summary_written) {
            (None, Ok(())) => dir.finish(),
            (_, Err(e)) => Err(e),
            (Some(_), Ok(())) => Ok(()),
        };
        if let Err(e) = finished {
            write_error.get_or_insert(e);
        }
    }
    if let (Some(dir), true, None, None) = (&out, resumable, &session.stopped, &write_error) {
        Store::remove(dir.path());
    }
    Ok(Report {
        summary,
        table: match &partial {
            Some(p) => format!("PARTIAL RESULTS — {p}\n\n{}", S::table(&output)),
            None => S::table(&output),
        },
        out: out.as_ref().map(|d| d.path().to_path_buf()),
        files: out.as_ref().map(OutDir::files).unwrap_or_default(),
        stopped: session.stopped.clone(),
        resumable,
        write_error,
    })
}

/// `S::setup`, or the stop requested while it ran: the theory's scans end early on a stop
/// request and leave meaningless numbers, which must never be reported (nor a study run on
/// them).
fn setup_or_stop<S: Study>(inputs: &Inputs, session: &mut Session) -> Result<S::Setup> {
    let setup = S::setup(inputs, session)?;
    crate::stop::unless_stopped().map_err(|stop| {
        anyhow::Error::new(stop).context(format!(
            "stopped before the set-up of `{}` (training set, theory) completed: nothing was \
             measured or written",
            S::KIND.name()
        ))
    })?;
    Ok(setup)
}

fn timed_setup<S: Study>(inputs: &Inputs, session: &mut Session) -> Result<S::Setup> {
    let clock = Instant::now();
    let setup = setup_or_stop::<S>(inputs, session)?;
    session.setup_seconds = clock.elapsed().as_secs_f64();
    Ok(setup)
}

fn on_engine<S: Study, E: Engine>(
    inputs: &Inputs,
    setup: &S::Setup,
    engine: &E,
    session: &mut Session,
) -> Result<Parts> {
    inputs.note(&format!("engine: {}", engine.describe()));
    measure_with_progress::<S, E>(inputs, setup, engine, session)
}

/// `S::measure` under one progress bar over the whole study.
fn measure_with_progress<S: Study, E: Engine>(
    inputs: &Inputs,
    setup: &S::Setup,
    engine: &E,
    session: &mut Session,
) -> Result<Parts> {
    // One-off preparations (the CPU's pruning table: 20 s at N = 20 000, d = 256) are set-up, not
    // steps: outside the progress rate, so that its ETA measures steps only.
    let clock = Instant::now();
    for plan in S::plans(setup) {
        engine.prepare(plan);
    }
    session.setup_seconds += clock.elapsed().as_secs_f64();
    session.begin_progress(S::work(inputs, setup), S::KIND.name());
    let parts = S::measure(inputs, setup, engine, session);
    session.finish_progress();
    parts
}
