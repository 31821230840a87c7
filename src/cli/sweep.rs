//! `regimes sweep` and `regimes plot`: their flags, and the printing of their reports (through
//! [`crate::out!`] and [`crate::note!`], which never panic on a closed pipe or a full stream).

#[allow(unused_imports)]
use super::*;
use std::path::Path;

#[derive(Args)]
pub(super) struct SweepArgs {
    /// The study to sweep: theory, run, speciation or collapse.
    #[arg(value_name = "STUDY")]
    study: String,
    /// A swept config key and its values, comma separated; repeat for a grid. Values holding
    /// commas go in the --config file's `over` table instead.
    /// Example: --over q=zero,optimal:0.5 --over dim=8,16
    #[arg(long = "over", value_name = "KEY=V1,V2,…", help_heading = "Sweep")]
    over: Vec<String>,
    #[command(flatten)]
    pub(super) study_args: StudyArgs,
}

/// The request of `regimes sweep`'s flags.
pub(super) fn request(a: SweepArgs) -> Result<crate::study::sweep::SweepRequest> {
    use crate::study::sweep::{Axis, Plan, SweepRequest};
    let kind = Kind::from_name(&a.study)
        .map_err(|e| anyhow::anyhow!("{e}: sweep one of theory, run, speciation, collapse"))?;
    let args = &a.study_args;
    let cfg = args.config.resolve_without(&["over"])?;
    let mut axes = vec![];
    if let Some(path) = &args.config.config {
        let text = crate::config::read_config_file(path)?;
        if let Ok(t) = toml::from_str::<toml::Table>(&text)
            && let Some(over) = t.get("over")
        {
            let table = over.as_table().ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: over must be a table, e.g. over = {{ q = [\"zero\"] }}",
                    path.display()
                )
            })?;
            axes.extend(Axis::from_toml(table)?);
        }
    }
    for o in &a.over {
        let axis = Axis::parse(o)?;
        // A flag replaces the file's values of the same key.
        axes.retain(|x: &Axis| x.key != axis.key);
        axes.push(axis);
    }
    let warnings = preflight(kind, args, &cfg)?;
    for (flag, given) in [
        ("devices", args.devices.is_some()),
        ("checkpoint-every", args.checkpoint_every.is_some()),
    ] {
        anyhow::ensure!(
            !given,
            "--{flag} is not supported by `sweep` (it resumes point by point; run shards with \
             --shard I/N instead)"
        );
    }
    let out = args
        .out
        .clone()
        .ok_or_else(|| anyhow::anyhow!("sweep needs --out DIR (one directory per point)"))?;
    let plan = Plan::new(kind, &cfg, &axes)?;
    Ok(SweepRequest {
        plan,
        out,
        force: args.force,
        quiet: args.quiet || args.json,
        shard: args.shard,
        warnings,
    })
}

pub(super) fn print_sweep(r: crate::study::sweep::SweepReport, json: bool) -> Result<()> {
    if json {
        crate::out!("{}", serde_json::to_string_pretty(&r.summary)?)?;
    } else {
        crate::out!("{}", r.table)?;
        crate::out!("wrote {} in {}", r.files.join(", "), r.out.display())?;
    }
    if let Some(reason) = &r.stopped {
        anyhow::bail!(
            "sweep stopped early ({reason}); the tables above cover the completed points; \
             continue it with `regimes resume {}`",
            r.out.display()
        )
    }
    Ok(())
}

/// `regimes plot`: the overlay written, its files named on stdout.
pub(super) fn plot(
    dirs: &[PathBuf],
    x: Option<&str>,
    out: &Path,
    render: &crate::report::Render,
    force: bool,
) -> Result<()> {
    let files = crate::study::sweep::plot(dirs, x, out, render, force)?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    crate::out!("wrote {}", names.join(", "))
}
