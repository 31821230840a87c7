//! `regimes theory`: the predictions alone — spectral gaps, s(t) and t_S, t_C, the stiffness of
//! the step — with the closed forms of the base paper where they apply.

use anyhow::Result;
use serde::Serialize;

use super::Context;
use crate::report::{format_table, or_dash as opt};
use crate::theory;

#[derive(Serialize)]
pub struct TheoryStudy {
    #[serde(flatten)]
    theory: theory::Theory,
    /// Biroli's closed forms, when U = I, Q = 0 and the target is ±m with C = σ²I.
    t_s_closed_form: Option<f64>,
    t_c_closed_form: Option<f64>,
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
        && p.q.to_dense().amax() == 0.0
        && built.class_dir.is_some()
        && cfg.mixture_file.is_none();
    let norm2 = built.mixture.means[0].norm_squared();
    let s2 = cfg.sigma * cfg.sigma;
    let result = TheoryStudy {
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
    format_table(&[
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
    ])
}
