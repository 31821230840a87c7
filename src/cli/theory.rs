//! `regimes theory`: the predictions alone — spectral gaps, s(t) and t_S, t_C, the stiffness of
//! the step — with the closed forms of the base paper where they apply.

use anyhow::Result;
use serde::Serialize;

use super::Context;
use crate::linalg::Linear;
use crate::model::Process;
use crate::model::coupling::{Coupling, Mode, mode_process, project};
use crate::report::{format_table, or_dash as opt};
use crate::theory;

#[derive(Serialize)]
pub struct TheoryStudy {
    #[serde(flatten)]
    pub theory: theory::Theory,
    /// With --coupling: the common and difference modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    modes: Option<Vec<ModeTheory>>,
    /// t_S(common) − t_S(difference): positive when the common mode resolves first.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_gap: Option<f64>,
    /// Biroli's closed forms, when U = I, Q = 0 and the target is ±m with C = σ²I.
    t_s_closed_form: Option<f64>,
    t_c_closed_form: Option<f64>,
}

/// One mode of two coupled modalities.
#[derive(Serialize)]
pub struct ModeTheory {
    pub name: &'static str,
    /// K's eigenvalue κ (at the stationary γ) times the mean rate Tr(U_d)/d: how fast the mode
    /// relaxes.
    pub rate: f64,
    /// When the classes separate along this mode: s(t) = 1 for the class deviations' projection
    /// onto it.
    pub t_s: Option<f64>,
    /// When N training points memorise along this mode alone (the REM on its d directions).
    pub t_c: Option<f64>,
}

/// The per-mode speciation and collapse times. Symmetric couplings and C = σ²I act within each
/// mode, so a mode's s(t) is the joint between-class SNR of the class deviations projected onto
/// it (exact under a schedule too: the process evaluates E(t) and Γ(t) in closed form), and its
/// collapse that of the mode's own d-dimensional process (the joint one restricted to the mode).
pub fn mode_theory(
    built: &super::build::Built,
    coupling: &Coupling,
    n: usize,
    t_max: f64,
) -> Result<Vec<ModeTheory>> {
    let p = &built.process;
    let c = &built.mixture.cov;
    let d = p.dim() / 2;
    let deviations = theory::between_class_deviations(&built.mixture);
    coupling
        .modes()
        .iter()
        .map(|mode| {
            let projected: Vec<_> = deviations.iter().map(|dev| project(mode, dev)).collect();
            let alone = mode_process(p, mode)?;
            let c_d = Linear::Scalar(c.diagonal()[0], d);
            Ok(ModeTheory {
                name: mode.name,
                rate: mode_rate(p, mode),
                t_s: theory::t_speciation_between(p, &projected, c, t_max),
                t_c: alone.and_then(|alone| theory::t_collapse(&alone, &c_d, n, t_max)),
            })
        })
        .collect()
}

/// κ·Tr(U_d)/d: the mean rate of U restricted to the mode (its half of the mode frame).
fn mode_rate(p: &Process, mode: &Mode) -> f64 {
    let d = p.dim() / 2;
    p.u.block(mode.half * d, d).diagonal().sum() / d as f64
}

pub fn theory(cx: &mut Context) -> Result<TheoryStudy> {
    let cfg = cx.cfg.clone();
    let built = super::build::build(&cfg)?;
    let n = cfg.n_train;
    let th = theory::theory(
        &built.process,
        &built.mixture,
        Some(n),
        cfg.t_max,
        cx.grid.dt(),
    );
    cx.warn_all(&th.warnings);
    let p = &built.process;
    let biroli = p.u == crate::linalg::Linear::identity(cfg.dim)
        && p.q.amax() == 0.0
        && built.class_dir.is_some()
        && cfg.mixture_file.is_none();
    let norm2 = built.mixture.means[0].norm_squared();
    let s2 = cfg.sigma * cfg.sigma;
    let modes = cfg
        .coupling
        .as_ref()
        .map(|c| mode_theory(&built, c, n, cfg.t_max))
        .transpose()?;
    let sync_gap = modes.as_ref().and_then(|m| Some(m[0].t_s? - m[1].t_s?));
    let result = TheoryStudy {
        modes,
        sync_gap,
        t_s_closed_form: biroli.then(|| theory::biroli_t_speciation(norm2, s2)),
        t_c_closed_form: biroli.then(|| theory::biroli_t_collapse(n, cfg.dim, s2)),
        theory: th,
    };
    if let Some(out) = cx.out.as_ref()
        && !result.theory.s_curve.is_empty()
    {
        out.write_csv(
            "s_curve.csv",
            &["t", "s", "lambda_min_mtilde", "phi_theory"],
            result
                .theory
                .s_curve
                .iter()
                .map(|&(t, s, l, f)| vec![t, s, l, f]),
        )?;
    }
    Ok(result)
}

pub fn table(r: &TheoryStudy) -> String {
    let t = &r.theory;
    let mut rows: Vec<(String, String)> = vec![
        (
            "spectral gap min Re λ(A)".into(),
            format!("{:.4}", t.spectral_gap),
        ),
        (
            "reversible gap λ_min(U)".into(),
            format!("{:.4}", t.spectral_gap_reversible),
        ),
        ("gap bound Tr(U)/d".into(), format!("{:.4}", t.gap_bound)),
        ("speciation time t_S".into(), opt(t.t_s)),
        (
            "  closed form ½log(1+‖m‖²−σ²)".into(),
            opt(r.t_s_closed_form),
        ),
        ("collapse time t_C".into(), opt(t.t_c)),
        ("  closed form".into(), opt(r.t_c_closed_form)),
        ("stiffness Δt‖QU‖".into(), format!("{:.4}", t.stiffness)),
    ];
    for m in r.modes.iter().flatten() {
        rows.push((
            format!("{} mode: rate, t_S, t_C", m.name),
            format!("{:.4}, {}, {}", m.rate, opt(m.t_s), opt(m.t_c)),
        ));
    }
    if let Some(g) = r.sync_gap {
        rows.push(("synchronization gap".into(), format!("{g:.4}")));
    }
    format_table(&rows)
}
