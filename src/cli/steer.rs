//! `regimes steer`: the antisymmetric Q within a norm budget that speciates earliest in
//! generation (largest theory t_S), beside Q = 0, the gap-optimal Q and the simple strategies
//! ([`crate::theory::steer`]); the Q is written to a `.npy` that `--q file:PATH` reads.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use clap::Args;

use crate::report::{format_table, or_dash as opt};
use crate::study::guard::{Guard, OutFile, until_stopped};
use crate::study::resources::Needs;
use crate::theory::steer::{Candidate, SteerOptions, q_npy, steer_strategies};

#[derive(Args)]
pub struct SteerArgs {
    #[command(flatten)]
    config: super::args::ConfigArgs,
    /// The budget B: search Q with ‖Q‖_F ≤ B.
    #[arg(long, value_name = "B")]
    budget: f64,
    /// Hold t_C within this fraction of its Q = 0 value (t_C with --n-train points), e.g. 0.02.
    #[arg(long, value_name = "FRACTION")]
    tc_tolerance: Option<f64>,
    /// Evolution-strategy steps after the scan of the simple strategies (its result is one start
    /// of the gradient ascent).
    #[arg(long, value_name = "N", default_value_t = 400)]
    iterations: usize,
    /// Write the steered Q (d×d, f64) to this .npy; read it back with --q file:PATH.
    #[arg(long, value_name = "PATH")]
    write_q: Option<PathBuf>,
    /// Print the result (JSON) on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn main(a: SteerArgs) -> Result<()> {
    // A preset's or config file's Q is replaced by the search; a --q flag is refused.
    ensure!(
        !a.config.has("q"),
        "steer: searches Q itself; drop --q (the preset's or config file's Q is replaced)"
    );
    let cfg = a.config.resolve()?;
    ensure!(
        cfg.coupling.is_none(),
        "steer: searches Q for one modality; drop --coupling"
    );
    // The search reads the target's theory only: training points would change nothing.
    for (flag, given) in [
        ("train-file", cfg.train_file.is_some()),
        ("train-labels", cfg.train_labels.is_some()),
    ] {
        ensure!(
            !given,
            "steer: --{flag} does not apply (the search uses the configured target's theory,              not training points); drop it"
        );
    }
    // The shared path (`study::guard`): the dense d×d matrices of the search checked against
    // memory, and the --write-q file claimed (its directory locked, a FIFO or device refused),
    // before any work.
    let dense = crate::config::Config {
        q: crate::model::QSpec::Optimal(1.0),
        ..cfg.clone()
    };
    Guard {
        command: "steer",
        needs: Needs::new(
            crate::study::resources::model_bytes(&dense),
            "--dim (the search holds dense d×d matrices)",
        ),
        out: None,
    }
    .open()?;
    let q_file = a
        .write_q
        .as_deref()
        .map(|p| OutFile::claim(p, "write-q"))
        .transpose()?;
    let built = crate::config::build::build(&cfg)?;
    // A budget whose Q times U overflows f64 is the budget's fault, not Q's: say so.
    let u_scale = built.process.u.to_dense().amax();
    ensure!(
        a.budget.is_finite() && a.budget >= 0.0 && (a.budget * u_scale).powi(2).is_finite(),
        "--budget {}: the Q it allows, times U (largest entry {u_scale:.4}), overflows f64; give          a finite, smaller --budget (‖Q‖_F of a few times ‖U‖ already moves t_S)",
        a.budget
    );
    let opts = SteerOptions {
        budget: a.budget,
        tc_tolerance: a.tc_tolerance,
        n_train: cfg.n_train_or_default(),
        iterations: a.iterations,
        t_max: cfg.t_max,
        seed: cfg.seed,
    };
    // The search does not poll the stop request: it runs beside the wait for one, which ends
    // the command at once with a typed stop (what a stopped search returns is meaningless, so
    // nothing is written).
    let (u, mixture, class_dir, lambdas) = (
        built.process.u.clone(),
        built.mixture.clone(),
        built.class_dir.clone(),
        cfg.q_lambdas.clone(),
    );
    let s = until_stopped(move || {
        steer_strategies(&u, &mixture, class_dir.as_ref(), lambdas.as_deref(), &opts)
    })
    .map_err(|e| {
        if crate::stop::stop_reason().is_some() {
            e.context("steer stopped early, before the search completed; nothing was written")
        } else {
            e.context(format!("steer with --budget {}", a.budget))
        }
    })?;
    if let Some(f) = &q_file {
        f.write(&q_npy(&s.steered.q)?)
            .map_err(|e| e.context(format!("--write-q {}", f.path().display())))?;
    }
    if a.json {
        crate::out!("{}", serde_json::to_string_pretty(&s)?)?;
    } else {
        let row = |c: &Candidate| {
            (
                c.name.clone(),
                format!("{:>8.4}   {:>8}   {:>8}", c.norm, opt(c.t_s), opt(c.t_c)),
            )
        };
        let mut rows = vec![("Q".to_string(), "  ‖Q‖_F        t_S        t_C".to_string())];
        rows.push(row(&s.zero));
        rows.extend(s.gap_optimal.iter().map(|c| {
            let (n, v) = row(c);
            (format!("{n} (gap-optimal)"), v)
        }));
        rows.extend(s.simple.iter().map(row));
        rows.push(row(&s.steered));
        crate::out!("{}", format_table(&rows))?;
        crate::out!(
            "budget ‖Q‖_F ≤ {}{}; {} theory evaluations, {} gradients; {}",
            s.budget,
            s.tc_tolerance
                .map_or(String::new(), |t| format!(", |Δt_C| ≤ {t}·t_C(0)")),
            s.evaluations,
            s.gradient_evaluations,
            s.method
        )?;
        let ends: Vec<String> = s
            .ascents
            .iter()
            .map(|a| format!("{} {} → {}", a.start, opt(a.t_s_start), opt(a.t_s)))
            .collect();
        crate::out!("ascents (start t_S → end t_S): {}", ends.join(", "))?;
        let pg = s.projected_gradient.map(|g| format!("{g:.2e}"));
        crate::out!(
            "projected gradient ‖P ∂t_S/∂Q‖_F at the steered Q: {}{}",
            pg.as_deref().unwrap_or("none (no gradient there)"),
            if s.tc_tolerance.is_some() {
                " (the ball only; the t_C tolerance is not counted)"
            } else {
                ""
            }
        )?;
        if let Some(p) = &a.write_q {
            crate::out!("wrote {} (use --q file:{})", p.display(), p.display())?;
        }
    }
    Ok(())
}
