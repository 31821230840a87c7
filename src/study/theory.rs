//! `regimes theory`: the predictions alone — spectral gaps, s(t) and t_S, t_C, the stiffness of
//! the step — with the closed forms of the base paper where they apply.

use super::keys::Read;
use crate::config::keys::Section;
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
    /// t_S(common) − t_S(difference): positive when the common mode resolves first; with
    /// per-mode pairing only (a shared label commits once, at the joint t_S).
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_gap: Option<f64>,
    /// With a shared label: t_decodable(common) − t_decodable(difference), the gap between the
    /// times each mode's marginal becomes bimodal (not a gap between commitments).
    #[serde(skip_serializing_if = "Option::is_none")]
    decodability_gap: Option<f64>,
    /// Biroli's closed forms, when U = I, Q = 0 and the target is ±m with C = σ²I.
    t_s_closed_form: Option<f64>,
    t_c_closed_form: Option<f64>,
    /// With --train-file: the theory of the file's points, which gives the headline t_S (the
    /// between-class criterion with --train-labels, else the top-eigenvalue criterion) and t_C
    /// (REM on the sample covariance).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<theory::data::DataTheory>,
    /// With --train-file: t_S and t_C of the configured target instead, for comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    t_s_target: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t_c_target: Option<Option<f64>>,
}

impl Study for TheoryStudy {
    const KIND: Kind = Kind::Theory;
    const READS: &'static [Read] = &[
        Read::All(Section::Model),
        Read::All(Section::Target),
        Read::Key("seed"),
        Read::Key("steps"),
        Read::Key("t-max"),
    ];
    const MEASURES: bool = false;
    type Setup = TheoryOutput;
    type Output = TheoryOutput;

    /// The predictions are the set-up: nothing is measured.
    fn setup(inputs: &Inputs, session: &mut Session) -> Result<TheoryOutput> {
        let cfg = &inputs.cfg;
        let built = crate::config::build::build(cfg)?;
        let n = cfg.n_train_or_default();
        let mut th = theory::theory(
            &built.process,
            &built.mixture,
            Some(n),
            cfg.t_max,
            super::explicit_dt(cfg, &inputs.grid),
        );
        // Training points from a file: the data's own t_S and t_C are the headline.
        let data = match &cfg.train_file {
            Some(_) => {
                let points = crate::config::build::training_set(cfg, &built)?;
                inputs.data_theory(&built, &points)?.map(|(d, _)| d)
            }
            None => None,
        };
        let targets = data.as_ref().map(|d| {
            let target = (th.t_s, th.t_c);
            th.t_s = d.t_s_between.or(d.t_s_top_eigenvalue);
            th.t_c = d.t_c;
            // The s curve and the criteria's warnings are the configured target's.
            th.s_curve.clear();
            th.warnings
                .retain(|w| !w.starts_with("speciation:") && !w.starts_with("collapse"));
            th.warnings.push(format!(
                "theory: t_S and t_C are the train-file's ({} points{}): t_S from {}, t_C from \
                 the REM criterion on its sample covariance; the configured target would give \
                 t_S = {}, t_C = {}",
                d.n,
                d.classes
                    .map_or(String::new(), |k| format!(", {k} classes")),
                if d.t_s_between.is_some() {
                    "the between-class criterion of its labels"
                } else {
                    "its covariance's top eigenvalue (no --train-labels)"
                },
                opt(target.0),
                opt(target.1)
            ));
            target
        });
        session.warn_all(&th.warnings);
        let p = &built.process;
        let biroli = p.u == crate::linalg::Linear::identity(cfg.dim)
            && p.q.amax() == 0.0
            && built.class_dir.is_some()
            && cfg.mixture_file.is_none()
            && cfg.train_file.is_none();
        let norm2 = built.mixture.means[0].norm_squared();
        let s2 = cfg.sigma * cfg.sigma;
        let modes = cfg
            .coupling
            .as_ref()
            .map(|c| mode_theory(p, &built.mixture, c, cfg.mode_labels(), n, cfg.t_max))
            .transpose()?;
        let sync_gap = modes.as_ref().and_then(|m| Some(m[0].t_s? - m[1].t_s?));
        let decodability_gap = modes
            .as_ref()
            .filter(|_| !cfg.mode_labels())
            .and_then(|m| Some(m[0].t_decodable? - m[1].t_decodable?));
        Ok(TheoryOutput {
            modes,
            sync_gap,
            decodability_gap,
            t_s_closed_form: biroli.then(|| theory::biroli_t_speciation(norm2, s2)),
            t_c_closed_form: biroli.then(|| theory::biroli_t_collapse(n, cfg.dim, s2)),
            theory: th,
            t_s_target: targets.map(|t| t.0),
            t_c_target: targets.map(|t| t.1),
            data,
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
    if let Some(d) = &r.data {
        rows.push((
            "train-file: N, classes".into(),
            format!(
                "{}, {}",
                d.n,
                d.classes.map_or("— (no labels)".into(), |k| k.to_string())
            ),
        ));
        rows.push((
            "  Λ = top eigenvalue of its covariance".into(),
            format!("{:.4}", d.lambda_max),
        ));
        rows.push(("  ½ ln Λ".into(), format!("{:.4}", d.half_ln_lambda)));
        rows.push((
            "  t_S top-eigenvalue criterion (this U)".into(),
            opt(d.t_s_top_eigenvalue),
        ));
        rows.push(("  t_S between-class (labels)".into(), opt(d.t_s_between)));
        if d.t_s_splits.len() > 1 {
            let splits: Vec<String> = d.t_s_splits.iter().map(|&t| opt(t)).collect();
            rows.push(("  split times".into(), splits.join(", ")));
        }
        rows.push(("  t_C REM, sample covariance".into(), opt(d.t_c)));
        if let (Some(ts), Some(tc)) = (r.t_s_target, r.t_c_target) {
            rows.push((
                "  configured target instead: t_S, t_C".into(),
                format!("{}, {}", opt(ts), opt(tc)),
            ));
        }
    }
    if r.decodability_gap.is_some() {
        rows[3].0 = "speciation time t_S (joint, s_c + s_d = 1)".into();
    }
    for m in r.modes.iter().flatten() {
        rows.push(match m.t_s {
            Some(_) => (
                format!("{} mode: rate, t_S, t_C", m.name),
                format!("{:.4}, {}, {}", m.rate, opt(m.t_s), opt(m.t_c)),
            ),
            None => (
                format!("{} mode: rate, t_decodable, t_C", m.name),
                format!("{:.4}, {}, {}", m.rate, opt(m.t_decodable), opt(m.t_c)),
            ),
        });
    }
    if let Some(g) = r.sync_gap {
        rows.push(("synchronization gap".into(), format!("{g:.4}")));
    }
    if let Some(g) = r.decodability_gap {
        rows.push((
            "marginal decodability gap (one shared label)".into(),
            format!("{g:.4}"),
        ));
    }
    format_table(&rows)
}
