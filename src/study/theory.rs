//! `regimes theory`: the predictions alone — spectral gaps, s(t) and t_S, t_C, the stiffness of
//! the step — with the closed forms of the base paper where they apply.

use anyhow::Result;
use serde::Serialize;

use super::{Inputs, Kind, Parts, Session, Study};
use crate::engine::Engine;
use crate::report::{OutDir, format_table, or_dash as opt};
use crate::theory::{self, modes::ModeTheory, modes::mode_theory};

/// `regimes theory`.
pub struct TheoryStudy;

#[derive(Clone, Serialize)]
pub struct TheoryOutput {
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

impl Study for TheoryStudy {
    const KIND: Kind = Kind::Theory;
    const IGNORES: &'static [&'static str] = &[
        "figure-size",
        "dpi",
        "particles",
        "pairs",
        "branch-times",
        "entropy-times",
        "record-times",
        "entropy-samples",
        "save-samples",
        "scheme",
        "grid",
        "start",
        "backend",
        "adapter",
        "batch",
        "threads",
        "steps-per-dispatch",
    ];
    const MEASURES: bool = false;
    type Setup = TheoryOutput;
    type Output = TheoryOutput;

    /// The predictions are the set-up: nothing is measured.
    fn setup(inputs: &Inputs, session: &mut Session) -> Result<TheoryOutput> {
        let cfg = &inputs.cfg;
        let built = crate::config::build::build(cfg)?;
        let n = cfg.n_train;
        let th = theory::theory(
            &built.process,
            &built.mixture,
            Some(n),
            cfg.t_max,
            super::explicit_dt(cfg, &inputs.grid),
        );
        session.warn_all(&th.warnings);
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
            .map(|c| mode_theory(p, &built.mixture, c, n, cfg.t_max))
            .transpose()?;
        let sync_gap = modes.as_ref().and_then(|m| Some(m[0].t_s? - m[1].t_s?));
        Ok(TheoryOutput {
            modes,
            sync_gap,
            t_s_closed_form: biroli.then(|| theory::biroli_t_speciation(norm2, s2)),
            t_c_closed_form: biroli.then(|| theory::biroli_t_collapse(n, cfg.dim, s2)),
            theory: th,
        })
    }

    fn measure<E: Engine>(_: &Inputs, _: &TheoryOutput, _: &E, _: &mut Session) -> Result<Parts> {
        Ok(Parts::default())
    }

    fn summarise(_: &Inputs, setup: &TheoryOutput, _: &Parts) -> Result<TheoryOutput> {
        Ok(setup.clone())
    }

    fn write(
        _: &Inputs,
        _: &TheoryOutput,
        r: &TheoryOutput,
        _: &Parts,
        out: &OutDir,
        _: Option<&str>,
    ) -> Result<()> {
        write_s_curve(out, &r.theory)
    }

    fn table(r: &TheoryOutput) -> String {
        table(r)
    }
}

/// `s_curve.csv`: s(t), λ_min(M̃_t) and F(s(t)) on the theory's grid (none without a curve).
pub fn write_s_curve(out: &OutDir, theory: &theory::Theory) -> Result<()> {
    if !theory.s_curve.is_empty() {
        out.write_csv(
            "s_curve.csv",
            &["t", "s", "lambda_min_mtilde", "phi_theory"],
            theory
                .s_curve
                .iter()
                .map(|p| vec![p.t, p.s, p.lambda_min_mtilde, p.phi_theory]),
        )?;
    }
    Ok(())
}

fn table(r: &TheoryOutput) -> String {
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
