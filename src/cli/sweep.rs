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
    use crate::study::sweep::Axis;
    let kind = request::sweep_kind(&a.study)?;
    let args = &a.study_args;
    let cfg = args.config.resolve_without(&["over"])?;
    let over = a
        .over
        .iter()
        .map(|o| Axis::parse(o))
        .collect::<Result<_>>()?;
    let axes = args.config.layers().axes(over)?;
    request::sweep(kind, cfg, &axes, options(args))
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
