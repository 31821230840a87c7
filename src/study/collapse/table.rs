//! The collapse study's human summary: f^e/α beside the REM theory, φ_C of the clone pairs and
//! the measured t̂_C beside the theory's t_C.

use super::Collapse;
use crate::report::{format_table, or_dash as opt};
use crate::study::pm;

/// The human summary.
pub(super) fn table(r: &Collapse) -> String {
    let mut s = String::from("     t   f^e/α ± s.e.      REM theory\n");
    for e in &r.excess_entropy {
        s += &format!(
            "{:>6.3}   {:.4} ± {:.4}    {:.4}\n",
            e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory
        );
    }
    for m in r.modes.iter().flatten() {
        s += &format!(
            "\n{} mode (α = {:.4}, t_C theory {})\n     t   f^e/α ± s.e.      REM theory\n",
            m.name,
            m.alpha,
            opt(m.t_c_theory)
        );
        for e in &m.excess_entropy {
            s += &format!(
                "{:>6.3}   {:.4} ± {:.4}    {:.4}\n",
                e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory
            );
        }
    }
    s += "\n     t   φ_C clones ± s.e.  posterior Σr²";
    s += if r.clone_same_class.is_some() {
        "   same class ± s.e.\n"
    } else {
        "\n"
    };
    for (i, p) in r.clone_collapse.iter().enumerate() {
        s += &format!(
            "{:>6.3}   {:>15}     {:>13}",
            p.t,
            pm(p.phi, p.stderr),
            opt(p.phi_posterior)
        );
        if let Some(c) = r.clone_same_class.as_ref().and_then(|c| c.get(i)) {
            s += &format!("   {:>17}", pm(c.phi, c.stderr));
        }
        s += "\n";
    }
    s += "\n";
    let ct = &r.collapse_times;
    let range = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{a:.4} – {b:.4}"),
        _ => "—".to_string(),
    };
    let mut rows = vec![(
        match r.t_c_theory_basis {
            "sample-covariance" => "t_C theory (REM, the file's sample covariance)".into(),
            _ => "t_C theory (Gaussian REM)".to_string(),
        },
        opt(r.t_c_theory),
    )];
    if r.t_c_target.is_some() {
        rows.push((
            "  of the configured target instead".into(),
            opt(r.t_c_target),
        ));
    }
    rows.extend([
        (
            "t̂_C median per trajectory (±1σ)".into(),
            match (r.t_c_measured, r.t_c_measured_interval) {
                // t̂_C is a node, the change lies within the step above it: where that step is
                // wider than the interval, the interval alone would claim a precision the grid
                // does not have.
                (Some(m), Some([lo, hi])) if ct.resolution > hi - lo => {
                    format!("{m:.4} ({lo:.4} – {hi:.4}; grid step {:.4})", ct.resolution)
                }
                (Some(m), Some([lo, hi])) => format!("{m:.4} ({lo:.4} – {hi:.4})"),
                _ => "—".to_string(),
            },
        ),
        ("t̂_C mean ± s.e.".into(), pm(ct.mean, ct.stderr)),
        ("t̂_C 10%–90%".into(), range(ct.q10, ct.q90)),
        (
            "training points N, α = ln N/d".into(),
            format!("{}, {:.4}", r.n_train, r.alpha),
        ),
    ]);
    s += &format_table(&rows);
    s
}
