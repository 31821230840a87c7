//! Where measured φ(t) crosses a level: t_S from the branch times that bracket F(1), with its
//! error budget (φ's noise and the interpolation across the bracket).

use serde::Serialize;

use super::branch::Branch;

/// Where φ(t) crosses `level` (φ decreases with t), by interpolation between the branch times
/// that bracket it ([`crossing_estimate`]); the largest such time if there are several.
pub fn crossing(branches: &[Branch], level: f64) -> Option<f64> {
    let points: Vec<(f64, f64, f64)> = branches.iter().map(|b| (b.t, b.phi(), 0.0)).collect();
    crossing_estimate(&points, level, None).map(|c| c.t)
}

/// [`crossing_estimate`] without a shape, as (t, total error).
pub fn crossing_with_error(points: &[(f64, f64, f64)], level: f64) -> Option<(f64, f64)> {
    crossing_estimate(points, level, None).map(|c| (c.t, c.error()))
}

/// A measured crossing time and its error budget.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Crossing {
    pub t: f64,
    /// From φ's noise at the two bracketing times, taken as fully correlated (the pairs of all
    /// branch times share their trunks, which correlates them positively: the sum bounds it).
    pub statistical: f64,
    /// The interpolation's own error, from the curvature over the bracket measured with the
    /// neighbouring points (see [`crossing_estimate`]).
    pub interpolation: f64,
}

impl Crossing {
    /// The total error: both parts in quadrature.
    pub fn error(&self) -> f64 {
        self.statistical.hypot(self.interpolation)
    }
}

/// Where the measured (t, φ, s.e.) `points` cross `level`, with its error budget; the largest
/// crossing if φ crosses several times.
///
/// Interpolating φ linearly between branch times is biased by φ's curvature (on `lu-tang` with
/// branch times 0.5 apart by 5 standard errors at 10⁵ pairs). With a `shape` g(t) (the theory's
/// φ), the residual φ − g is interpolated linearly instead and the crossing solved on
/// g + residual: exact where the theory is, and where it is not its residual is far flatter
/// than φ. The interpolation error is what the curvature of the interpolated quantity over the
/// bracket moves the root by, |c (t−t₁)(t−t₀) / φ̂'(t)|, c the second divided difference
/// through the bracket and a neighbour (the larger of the two neighbours'), doubled since c is
/// measured beside the bracket; with no neighbour,
/// the distance to the plain linear root with a shape, or the whole bracket without one.
pub fn crossing_estimate(
    points: &[(f64, f64, f64)],
    level: f64,
    shape: Option<&dyn Fn(f64) -> f64>,
) -> Option<Crossing> {
    let mut by_time: Vec<(f64, f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    by_time.sort_by(|a, b| b.0.total_cmp(&a.0));
    let k = by_time
        .windows(2)
        .position(|w| (w[0].1 - level) * (w[1].1 - level) <= 0.0 && w[0].1 != w[1].1)?;
    let g = |t: f64| shape.map_or(0.0, |f| f(t));
    let residual = |(t, p, _): (f64, f64, f64)| p - g(t);
    let ((t1, p1, e1), (t0, p0, e0)) = (by_time[k], by_time[k + 1]); // t1 > t0
    let (r1, r0) = (residual(by_time[k]), residual(by_time[k + 1]));
    ensure_finite(r1 + r0)?;
    let tau = t0 - t1;
    // φ̂(t) − level: the shape plus the interpolated residual; p₁ − level and p₀ − level at the
    // ends, of opposite signs.
    let h = |t: f64| g(t) + r1 + (r0 - r1) * (t - t1) / tau - level;
    let (mut lo, mut hi) = (t0, t1);
    let lo_sign = (p0 - level).signum();
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if h(mid).signum() == lo_sign {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = 0.5 * (lo + hi);
    let eps = 1e-5 * (t1 - t0);
    let slope = (h(t + eps) - h(t - eps)) / (2.0 * eps);
    let w1 = (t - t0) / (t1 - t0);
    let statistical = (w1 * e1 + (1.0 - w1) * e0) / slope.abs();
    let curvature_shift = |n: usize| -> Option<f64> {
        let point = by_time.get(n).copied()?;
        let (tn, rn) = (point.0, residual(point));
        // Second divided difference of the residual through (t₁, t₀, t_n).
        let d1 = (r0 - r1) / tau;
        let d2 = if tn > t1 {
            (d1 - (r1 - rn) / (t1 - tn)) / (t0 - tn)
        } else {
            ((rn - r0) / (tn - t0) - d1) / (tn - t1)
        };
        // Doubled: the curvature is measured beside the bracket, not in it (on a curve whose
        // shape is 5 % off in t, 0.5 apart, the shift alone covered 60 % of the bias).
        Some(2.0 * (d2 * (t - t1) * (t - t0) / slope).abs())
    };
    let neighbours = [
        k.checked_sub(1).and_then(curvature_shift),
        curvature_shift(k + 2),
    ];
    let interpolation = match neighbours.iter().flatten().copied().reduce(f64::max) {
        Some(shift) => shift,
        None if shape.is_some() => (t - (t1 + (level - p1) * tau / (p0 - p1))).abs(),
        None => (t1 - t).max(t - t0),
    };
    Some(Crossing {
        t,
        statistical,
        interpolation,
    })
}

fn ensure_finite(x: f64) -> Option<()> {
    x.is_finite().then_some(())
}

/// Where the measured φ of `branches` crosses `level`, with its total error.
pub fn crossing_of(branches: &[Branch], level: f64) -> Option<(f64, f64)> {
    crossing_parts(branches, level, None).map(|c| (c.t, c.error()))
}

/// Where the measured φ of `branches` crosses `level`, with its error budget; interpolated
/// with the theory's φ(t) as its shape when there is one ([`crossing_estimate`]).
pub fn crossing_parts(
    branches: &[Branch],
    level: f64,
    theory: Option<&dyn Fn(f64) -> f64>,
) -> Option<Crossing> {
    let points: Vec<(f64, f64, f64)> = branches
        .iter()
        .filter_map(|b| b.measured().map(|(p, e)| (b.t, p, e)))
        .collect();
    crossing_estimate(&points, level, theory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::{cloning_probability as f, f_at_speciation};

    /// φ = F(s(t)) for an OU mode of variance-1 classes ±m: s = m²e^{−2t}/(1 − (1 − σ²)e^{−2t})
    /// with σ² = 0.1 (curved in ln s), crossing F(1) where s = 1.
    fn curve(t: f64) -> f64 {
        let e = (-2.0 * t).exp();
        f(4.0 * e / (1.0 - 0.9 * e))
    }

    #[test]
    fn a_shape_removes_the_bias_of_a_coarse_bracket_and_its_error_covers_the_rest() {
        // s = 1: 4e = 1 − 0.9e → e = 1/4.9.
        let truth = 0.5 * 4.9f64.ln();
        let level = f_at_speciation();
        // A theory 5 % off in time: the shape, not the truth.
        let off = |t: f64| curve(1.05 * t);
        for h in [0.1, 0.25, 0.5] {
            let points: Vec<(f64, f64, f64)> = (1..=12)
                .map(|k| k as f64 * h)
                .map(|t| (t, curve(t), 0.0))
                .collect();
            let linear = crossing_estimate(&points, level, None).unwrap();
            let c = crossing_estimate(&points, level, Some(&off)).unwrap();
            let exact = crossing_estimate(&points, level, Some(&curve)).unwrap();
            eprintln!(
                "h = {h}: {:.5} ± {:.5}, linear in φ {:.5} ± {:.5}, truth {truth:.5}",
                c.t, c.interpolation, linear.t, linear.interpolation
            );
            assert_eq!(c.statistical, 0.0);
            assert!((exact.t - truth).abs() < 1e-9, "{exact:?}");
            assert!((c.t - truth).abs() <= c.interpolation, "{c:?} vs {truth}");
            assert!(
                (c.t - truth).abs() < 0.3 * (linear.t - truth).abs(),
                "h = {h}"
            );
            assert!(c.interpolation < 0.5 * (linear.t - truth).abs(), "h = {h}");
        }
    }

    #[test]
    fn the_statistical_error_follows_the_noise_at_the_bracket() {
        let level = f_at_speciation();
        let points: Vec<(f64, f64, f64)> = [0.5, 0.75, 1.0, 1.25]
            .iter()
            .map(|&t| (t, curve(t), 0.003))
            .collect();
        let c = crossing_estimate(&points, level, Some(&curve)).unwrap();
        // Shifting both bracketing φ up by their s.e. moves the crossing by about the
        // statistical error (fully correlated noise).
        let shifted: Vec<(f64, f64, f64)> =
            points.iter().map(|p| (p.0, p.1 + 0.003, p.2)).collect();
        let d = crossing_estimate(&shifted, level, Some(&curve)).unwrap();
        let moved = (d.t - c.t).abs();
        assert!(
            (moved - c.statistical).abs() < 0.05 * c.statistical,
            "{moved} vs {}",
            c.statistical
        );
        // No crossing: None; two points and no shape: the bracket is the error.
        assert!(crossing_estimate(&points[..1], level, None).is_none());
        let edge = [(0.5, 1.0, 0.0), (1.0, 0.6, 0.01)];
        let e = crossing_estimate(&edge, level, None).unwrap();
        assert!(e.t > 0.5 && e.t < 1.0 && e.interpolation >= (e.t - 0.5).min(1.0 - e.t));
    }
}
