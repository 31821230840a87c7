//! Root finding along the generation time: E_t on a uniform grid, the last sign change of a
//! scanned function, and bisection.

use crate::linalg::{Form, Linear};
use crate::model::Process;

/// Visit `E_t` on the uniform grid `t_k = t_max·k/n`, k = 0..=n. Dense propagators are built
/// by repeated multiplication `E_{t_k} = E_{t_{k−1}} E_h` (one matrix product per point instead
/// of a matrix exponential; the relative error grows like k·ε); cheap forms and schedules (whose
/// steps differ) use the closed form.
pub(crate) fn for_each_on_grid(
    p: &Process,
    t_max: f64,
    n: usize,
    mut f: impl FnMut(usize, f64, &Linear),
) {
    let at = |k: usize| t_max * k as f64 / n as f64;
    if p.a.form() != Form::Dense || p.schedule.is_some() {
        for k in 0..=n {
            if super::stopping() {
                return;
            }
            f(k, at(k), &p.propagator(at(k)));
        }
        return;
    }
    let step = p.propagator(at(1));
    let mut e = Linear::identity(p.dim());
    for k in 0..=n {
        if super::stopping() {
            return;
        }
        f(k, at(k), &e);
        if k < n {
            e = e.mul(&step);
        }
    }
}

/// `sup{t ∈ [0, t_max] : g(t, E_t) ≥ 0}`: evaluate g on a uniform grid of `n` intervals
/// ([`for_each_on_grid`]), take the highest grid point with g ≥ 0 (as if scanning from t_max
/// downward), then bisect the bracket above it with exact propagators to an absolute width of
/// `1e-11·max(1, t)`. NaN counts as < 0. `Some(t_max)` when g(t_max) ≥ 0, `None` when g < 0 at
/// every grid point.
pub(crate) fn last_crossing(
    p: &Process,
    mut g: impl FnMut(f64, &Linear) -> f64,
    t_max: f64,
    n: usize,
) -> Option<f64> {
    if !(t_max.is_finite() && t_max > 0.0) {
        return None;
    }
    let n = n.max(1);
    let at_max = g(t_max, &p.propagator(t_max));
    if at_max >= 0.0 {
        return Some(t_max);
    }
    let mut values = vec![at_max; n + 1];
    for_each_on_grid(p, t_max, n, |k, t, e| {
        if k < n {
            values[k] = g(t, e);
        }
    });
    crossing_from_grid(&values, t_max, |t| g(t, &p.propagator(t)))
}

/// The refinement step of [`last_crossing`] given `values[k] = g(t_max·k/n)`, k = 0..=n, and an
/// exact evaluator for the bisection.
pub(crate) fn crossing_from_grid(
    values: &[f64],
    t_max: f64,
    mut g: impl FnMut(f64) -> f64,
) -> Option<f64> {
    let n = values.len().checked_sub(1)?;
    if n == 0 || !(t_max.is_finite() && t_max > 0.0) {
        return None;
    }
    if values[n] >= 0.0 {
        return Some(t_max);
    }
    let k = (0..n).rev().find(|&k| values[k] >= 0.0)?;
    let (lo, hi) = (
        t_max * k as f64 / n as f64,
        t_max * (k + 1) as f64 / n as f64,
    );
    Some(bisect(&mut g, lo, hi))
}

/// Bisection for the boundary between `lo` (g ≥ 0) and `hi` (g < 0); returns the midpoint of the
/// final bracket.
pub(crate) fn bisect(g: &mut impl FnMut(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..200 {
        if hi - lo <= 1e-11 * hi.abs().max(1.0) || super::stopping() {
            break;
        }
        let mid = 0.5 * (lo + hi);
        if g(mid) >= 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
