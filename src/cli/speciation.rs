//! `regimes speciation`: the cloning experiment on the mixture target, beside the theory.

use anyhow::Result;
use serde::Serialize;

use super::{Context, grid_points};
use crate::engine::Engine;
use crate::measure::cloning::{Branch, Pairs, clone_pairs_from, crossing};
use crate::report::{OutDir, Series, Style};
use crate::report::{format_table, or_dash as opt};
use crate::theory::{self, Theory, cloning_probability, f_at_speciation, snr};

/// φ at one branch time, measured by clones and by the posterior purity, beside F(s(t)).
#[derive(Clone, Debug, Serialize)]
pub struct PhiPoint {
    pub t: f64,
    pub phi: f64,
    pub stderr: f64,
    /// Exact-score estimate mean Σ r² at the branch point (no clones needed).
    pub phi_posterior: f64,
    pub phi_posterior_stderr: f64,
    /// F(s(t)) for two symmetric classes, else null.
    pub phi_theory: Option<f64>,
    pub pairs: u64,
}

impl PhiPoint {
    pub fn new(b: &Branch, theory: Option<f64>) -> Self {
        PhiPoint {
            t: b.t,
            phi: b.phi(),
            stderr: b.stderr(),
            phi_posterior: b.purity.mean[0],
            phi_posterior_stderr: b.purity.stderr(0),
            phi_theory: theory,
            pairs: b.pairs,
        }
    }
}

/// Writes φ points as CSV (phi_theory is `nan` where there is no theory).
pub fn write_phi_csv(out: &OutDir, name: &str, points: &[PhiPoint]) -> Result<()> {
    out.write_csv(
        name,
        &[
            "t",
            "phi",
            "stderr",
            "phi_posterior",
            "phi_posterior_stderr",
            "phi_theory",
        ],
        points.iter().map(|p| {
            vec![
                p.t,
                p.phi,
                p.stderr,
                p.phi_posterior,
                p.phi_posterior_stderr,
                p.phi_theory.unwrap_or(f64::NAN),
            ]
        }),
    )?;
    Ok(())
}

#[derive(Serialize)]
pub struct Speciation {
    pub t_s_theory: Option<f64>,
    pub t_s_measured: Option<f64>,
    /// F(1), the level φ crosses at t_S.
    pub f_at_speciation: f64,
    pub pairs: u64,
    pub phi: Vec<PhiPoint>,
    pub theory: Theory,
}

/// What the clone experiment needs besides its engine.
pub struct Setup {
    built: super::build::Built,
    plan: crate::plan::Plan,
    theory: Theory,
    /// Grid indices of the branch points.
    pub steps: Vec<usize>,
    /// The study's clone pairs (all shards).
    pub pairs: u64,
}

impl Setup {
    /// The branches of a folded clone experiment (merged shards).
    pub fn branches(&self, state: crate::measure::cloning::CloneState) -> Vec<Branch> {
        crate::measure::cloning::Cloning::from_state(&self.plan, &self.steps, state).branches
    }
}

pub fn setup(cx: &mut Context) -> Result<Setup> {
    let cfg = cx.cfg.clone();
    let (built, plan, theory) = cx.mixture_setup()?;
    let times = cfg
        .branch_times
        .clone()
        .unwrap_or_else(|| match theory.t_s {
            Some(ts) => [0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 2.0]
                .iter()
                .map(|f| f * ts)
                .collect(),
            None => (1..=8).map(|k| cfg.t_max * k as f64 / 9.0).collect(),
        });
    let steps = grid_points(&cx.grid, &times, true);
    let pairs = cx.pairs(20_000);
    Ok(Setup {
        built,
        plan,
        theory,
        steps,
        pairs,
    })
}

pub fn speciation<E: Engine>(cx: &mut Context, engine: &E) -> Result<Speciation> {
    let cfg = cx.cfg.clone();
    let s = setup(cx)?;
    let range = cx.range(s.pairs);
    let trunk = s.steps.iter().max().copied().unwrap_or(0);
    let work = (range.end - range.start)
        * (trunk
            + s.steps
                .iter()
                .map(|&j| 2 * (cx.grid.steps - j))
                .sum::<usize>()) as u64;
    let resume = cx.take_resume(0);
    let per_pair = work / (range.end - range.start).max(1);
    let work = work.saturating_sub(resume.as_ref().map_or(0, |r| r.work_done(&range, per_pair)));
    let mut ck = cx.checkpoint.take();
    let cloning = cx.with_progress(work, "clone pairs", |tick| {
        let seeded = Pairs {
            seed: cfg.seed,
            batch: cfg.batch,
        };
        let (plan, steps) = (&s.plan, &s.steps);
        clone_pairs_from(
            engine,
            plan,
            seeded,
            range,
            steps,
            resume,
            ck.as_mut(),
            tick,
        )
    });
    cx.checkpoint = ck;
    let cloning = cloning?;
    cx.stopped(cloning.stopped);
    cx.parts.clones = Some(cloning.state.clone());
    report(cx, &s, cloning.branches)
}

/// The summary, CSV and plots of the clone experiment from its branches (the run's own, or
/// merged from shards).
pub fn report(cx: &mut Context, s: &Setup, branches: Vec<Branch>) -> Result<Speciation> {
    let theory = s.theory.clone();
    let built = &s.built;
    let two_class = theory::symmetric_two_class(&built.mixture).cloned();
    let level = f_at_speciation();
    let phi: Vec<PhiPoint> = branches
        .iter()
        .map(|b| {
            let th = two_class
                .as_ref()
                .map(|m| cloning_probability(snr(&built.process, m, &built.mixture.cov, b.t)));
            PhiPoint::new(b, th)
        })
        .collect();
    let result = Speciation {
        t_s_theory: theory.t_s,
        t_s_measured: crossing(&branches, level),
        f_at_speciation: level,
        pairs: branches.first().map_or(0, |b| b.pairs),
        phi,
        theory,
    };
    write_outputs(cx, &result)?;
    Ok(result)
}

fn write_outputs(cx: &mut Context, r: &Speciation) -> Result<()> {
    let Some(out) = cx.out.as_ref() else {
        return Ok(());
    };
    write_phi_csv(out, "phi.csv", &r.phi)?;
    if !r.theory.s_curve.is_empty() {
        out.write_csv(
            "s_curve.csv",
            &["t", "s", "lambda_min_mtilde", "phi_theory"],
            r.theory
                .s_curve
                .iter()
                .map(|&(t, s, l, f)| vec![t, s, l, f]),
        )?;
    }
    let mut series = vec![
        Series {
            label: "φ from clones (±1 s.e.)".into(),
            points: r.phi.iter().map(|p| (p.t, p.phi)).collect(),
            error: Some(r.phi.iter().map(|p| p.stderr).collect()),
            style: Style::Points,
        },
        Series {
            label: "posterior Σ r² at the branch".into(),
            points: r.phi.iter().map(|p| (p.t, p.phi_posterior)).collect(),
            error: None,
            style: Style::Points,
        },
    ];
    if !r.theory.s_curve.is_empty() {
        // Show the theory where the measurements are, not out to the flat tail at t_max.
        let t_end = 1.5 * r.phi.iter().map(|p| p.t).fold(0.0, f64::max);
        series.push(Series {
            label: "theory F(s(t))".into(),
            points: r
                .theory
                .s_curve
                .iter()
                .filter(|&&(t, ..)| t <= t_end)
                .map(|&(t, _, _, f)| (t, f))
                .collect(),
            error: None,
            style: Style::Line,
        });
    }
    let mut markers = vec![];
    if let Some(t) = r.t_s_theory {
        markers.push(("t_S theory".to_string(), t));
    }
    if let Some(t) = r.t_s_measured {
        markers.push(("t_S measured".to_string(), t));
    }
    crate::report::plot_series(
        out,
        "phi.svg",
        "Cloning probability φ(t)",
        "branch time t",
        "φ",
        &series,
        &markers,
    )?;
    Ok(())
}

/// The human summary.
pub fn table(r: &Speciation) -> String {
    let mut s = String::from("     t   φ clones ± s.e.   φ posterior   F(s(t)) theory\n");
    for p in &r.phi {
        s += &format!(
            "{:>6.3}   {:.4} ± {:.4}      {:.4}        {}\n",
            p.t,
            p.phi,
            p.stderr,
            p.phi_posterior,
            opt(p.phi_theory)
        );
    }
    s += "\n";
    s += &format_table(&[
        ("t_S theory (s(t) = 1)".into(), opt(r.t_s_theory)),
        (
            format!("t_S measured (φ = {:.4})", r.f_at_speciation),
            opt(r.t_s_measured),
        ),
        ("clone pairs per time".into(), r.pairs.to_string()),
        (
            "spectral gap / bound".into(),
            format!("{:.4} / {:.4}", r.theory.spectral_gap, r.theory.gap_bound),
        ),
    ]);
    s
}
