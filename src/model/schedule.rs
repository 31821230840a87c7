//! A coupling strength that changes with time, γ(t), and the forward process it drives
//! (docs/mathematics.md §9.1). The coupling matrices K(γ) of every γ share their eigenvectors, so
//! in the mode frame (c, d) the drift `A(t) = diag(κ_c(γ(t)) U_d, κ_d(γ(t)) U_d)` commutes with
//! itself at all times and everything stays in closed form per mode k and eigenvalue u of U_d:
//! with `Λ_k(t) = ∫₀ᵗ κ_k(γ(s)) ds`,
//!
//! ```text
//! E(t) = diag_k exp(−Λ_k(t) U_d)          v_k(t, u) = 2∫₀ᵗ exp(−2u(Λ_k(t) − Λ_k(s))) ds
//! ```
//!
//! and the covariance of `x_t | x_0` is `diag_k v_k(t, U_d)`.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, anyhow, ensure};
use nalgebra::{DMatrix, DVector};

use crate::linalg::Linear;

/// `(1 − e^{−x})/x = ∫₀¹ e^{−xs} ds`, accurate as x → 0.
fn phi1(x: f64) -> f64 {
    if x == 0.0 { 1.0 } else { -(-x).exp_m1() / x }
}

/// `∫₀¹ s² e^{−xs} ds = (2 − e^{−x}(x² + 2x + 2))/x³`, by its series where that cancels.
fn phi2(x: f64) -> f64 {
    if x.abs() < 0.1 {
        1.0 / 3.0 - x / 4.0 + x * x / 10.0 - x.powi(3) / 36.0 + x.powi(4) / 168.0
    } else {
        (2.0 - (-x).exp() * (x * x + 2.0 * x + 2.0)) / x.powi(3)
    }
}

/// How γ runs between the knots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Piecewise constant: γ_i from t_i until the next knot.
    Step,
    /// Piecewise linear through the knots, constant beyond the last.
    Ramp,
}

/// γ(t) on forward time t ≥ 0 as knots (t_i, γ_i) with t_0 = 0 and t_i increasing.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub shape: Shape,
    pub knots: Vec<(f64, f64)>,
    /// The file the knots came from (`file:PATH`), kept so the spec prints as it was given.
    pub file: Option<String>,
}

/// Linear pieces are integrated as this many sub-pieces ([`ScheduledDrift::noise_variance`]):
/// 1e-10 relative on the tested ramps for rates up to 10, 1e-9 at rate 100.
const RAMP_PIECES: usize = 1024;

/// Sub-pieces for a linear piece with `x = u |κ′| L²` (rate u, slope κ′ of κ, length L): each
/// sub-piece of length h keeps `u |κ′| h² ≤ 1/RAMP_PIECES²`, the bound the tested ramps were
/// integrated under, so a schedule of many short, gentle pieces (a 1000-row file) costs a few
/// sub-pieces each instead of [`RAMP_PIECES`], and a long or steep piece still gets all of them.
fn ramp_parts(x: f64) -> usize {
    let parts = (RAMP_PIECES as f64 * x.max(0.0).sqrt()).ceil();
    if parts.is_nan() {
        RAMP_PIECES
    } else {
        (parts as usize).clamp(1, RAMP_PIECES)
    }
}

impl Schedule {
    pub fn constant(g: f64) -> Self {
        Schedule {
            shape: Shape::Step,
            knots: vec![(0.0, g)],
            file: None,
        }
    }

    /// The constant value, if γ never changes.
    pub fn as_constant(&self) -> Option<f64> {
        let g = self.knots[0].1;
        self.knots.iter().all(|k| k.1 == g).then_some(g)
    }

    /// Every value γ takes lies between the smallest and largest knot value.
    pub fn range(&self) -> (f64, f64) {
        let vals = self.knots.iter().map(|k| k.1);
        (
            vals.clone().fold(f64::INFINITY, f64::min),
            vals.fold(f64::NEG_INFINITY, f64::max),
        )
    }

    /// The value at the end, which holds for every t past the last knot.
    pub fn last(&self) -> f64 {
        self.knots[self.knots.len() - 1].1
    }

    pub fn at(&self, t: f64) -> f64 {
        let i = self.knots.partition_point(|k| k.0 <= t).max(1) - 1;
        let (t0, g0) = self.knots[i];
        match (self.shape, self.knots.get(i + 1)) {
            (Shape::Ramp, Some(&(t1, g1))) if t > t0 => g0 + (g1 - g0) * (t - t0) / (t1 - t0),
            _ => g0,
        }
    }

    /// `∫₀ᵗ γ(s) ds`, exact.
    pub fn integral(&self, t: f64) -> f64 {
        self.pieces(t)
            .map(|(a, b)| 0.5 * (self.at_right_of(a) + self.at_left_of(b)) * (b - a))
            .sum()
    }

    /// The intervals between knots that cover [0, t] (γ is constant or linear on each).
    fn pieces(&self, t: f64) -> impl Iterator<Item = (f64, f64)> + '_ {
        let mut cuts: Vec<f64> = self
            .knots
            .iter()
            .map(|k| k.0)
            .filter(|&k| k > 0.0 && k < t)
            .collect();
        cuts.insert(0, 0.0);
        cuts.push(t.max(0.0));
        (0..cuts.len() - 1).map(move |i| (cuts[i], cuts[i + 1]))
    }

    /// γ just after and just before a time (they differ at the jumps of a step schedule).
    fn at_right_of(&self, t: f64) -> f64 {
        self.at(t)
    }
    fn at_left_of(&self, t: f64) -> f64 {
        match self.shape {
            Shape::Ramp => self.at(t),
            Shape::Step => {
                let i = self.knots.partition_point(|k| k.0 < t).max(1) - 1;
                self.knots[i].1
            }
        }
    }

    fn check(&self) -> Result<()> {
        ensure!(!self.knots.is_empty(), "coupling: a schedule needs a value");
        ensure!(
            self.knots[0].0 == 0.0,
            "coupling: a schedule starts at t = 0 (first time is {})",
            self.knots[0].0
        );
        for w in self.knots.windows(2) {
            ensure!(
                w[1].0 > w[0].0,
                "coupling: schedule times must increase ({} then {})",
                w[0].0,
                w[1].0
            );
        }
        ensure!(
            self.knots
                .iter()
                .all(|k| k.0.is_finite() && k.1.is_finite()),
            "coupling: schedule times and values must be finite numbers"
        );
        Ok(())
    }

    /// Knots from a two-column text file (t γ per line, commas or spaces; `#` comments).
    fn read(path: &str) -> Result<Vec<(f64, f64)>> {
        let text = crate::io::read_bounded(std::path::Path::new(path), 1 << 20)
            .map_err(|e| anyhow!("coupling: schedule file '{path}': {e}"))?;
        let text = String::from_utf8(text)
            .map_err(|_| anyhow!("coupling: schedule file '{path}' is not UTF-8 text"))?;
        let mut knots = vec![];
        let mut header_seen = false;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let cols: Vec<&str> = line
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .collect();
            let parsed: Option<Vec<f64>> = cols.iter().map(|c| c.parse().ok()).collect();
            match parsed.as_deref() {
                Some([t, g]) => knots.push((*t, *g)),
                // A header line of words such as "t,gamma" is allowed first (not "0 0.5x").
                _ if knots.is_empty()
                    && !header_seen
                    && cols.iter().all(|c| crate::io::is_word(c)) =>
                {
                    header_seen = true;
                }
                _ => {
                    return Err(anyhow!(
                        "coupling: schedule file '{path}', line {}: expected two numbers 't γ', \
                         got '{line}'",
                        i + 1
                    ));
                }
            }
        }
        Ok(knots)
    }
}

impl FromStr for Schedule {
    type Err = anyhow::Error;
    /// `G` (constant), `step:G0,T1,G1,…`, `ramp:G0,T1,G1,…` or `file:PATH` (a ramp through the
    /// file's rows).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let forms = "a number, step:G0,T1,G1,…, ramp:G0,T1,G1,… or file:PATH";
        let number = |x: &str| -> Result<f64> {
            x.trim()
                .parse()
                .map_err(|_| anyhow!("coupling: '{x}' in '{s}' is not a number; γ is {forms}"))
        };
        let schedule = if let Some(path) = s.strip_prefix("file:") {
            Schedule {
                shape: Shape::Ramp,
                knots: Schedule::read(path)?,
                file: Some(path.to_string()),
            }
        } else if let Some((head, rest)) = s.split_once(':') {
            let shape = match head {
                "step" => Shape::Step,
                "ramp" => Shape::Ramp,
                _ => return Err(anyhow!("coupling: '{s}': unknown schedule; γ is {forms}")),
            };
            let values = rest.split(',').map(number).collect::<Result<Vec<f64>>>()?;
            ensure!(
                values.len() % 2 == 1,
                "coupling: '{s}': a schedule alternates values and times, G0,T1,G1,… (an odd \
                 count)"
            );
            let mut knots = vec![(0.0, values[0])];
            knots.extend(values[1..].chunks(2).map(|c| (c[0], c[1])));
            Schedule {
                shape,
                knots,
                file: None,
            }
        } else {
            Schedule::constant(number(s)?)
        };
        schedule.check()?;
        Ok(schedule)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if let Some(path) = &self.file {
            return write!(f, "file:{path}");
        }
        if self.knots.len() == 1 {
            return write!(f, "{}", self.knots[0].1);
        }
        let head = match self.shape {
            Shape::Step => "step",
            Shape::Ramp => "ramp",
        };
        write!(f, "{head}:{}", self.knots[0].1)?;
        for (t, g) in &self.knots[1..] {
            write!(f, ",{t},{g}")?;
        }
        Ok(())
    }
}

/// One mode of the coupled process under a schedule: its half of the mode frame and its rate
/// `κ(γ) = base + slope·γ` (K's eigenvalue).
#[derive(Clone, Debug)]
pub struct ModeRate {
    pub half: usize,
    pub base: f64,
    pub slope: f64,
}

/// The forward process of two modalities coupled by a schedule, in the mode frame (see the
/// module doc).
#[derive(Clone, Debug)]
pub struct ScheduledDrift {
    u_d: Linear,
    /// Eigenvalues and eigenvectors (columns) of U_d when it is dense.
    eigen: Option<(DVector<f64>, DMatrix<f64>)>,
    modes: Vec<ModeRate>,
    pub gamma: Schedule,
    /// [`ScheduledDrift::noise_variance`] at the knots, per (mode, rate u), filled on first use.
    knot_variance: KnotCache,
}

type KnotCache = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<(usize, u64, u64, u64), std::sync::Arc<Vec<f64>>>>,
>;

impl ScheduledDrift {
    pub fn new(u_d: &Linear, mut modes: Vec<ModeRate>, gamma: Schedule) -> Self {
        modes.sort_by_key(|m| m.half);
        let eigen = match u_d {
            Linear::Dense(m) => {
                let e = m.clone().symmetric_eigen();
                Some((e.eigenvalues, e.eigenvectors))
            }
            _ => None,
        };
        ScheduledDrift {
            u_d: u_d.clone(),
            eigen,
            modes,
            gamma,
            knot_variance: KnotCache::default(),
        }
    }

    /// `Λ_k(t) = ∫₀ᵗ κ_k(γ(s)) ds`.
    fn lambda(&self, mode: &ModeRate, t: f64) -> f64 {
        mode.base * t + mode.slope * self.gamma.integral(t)
    }

    /// `v_k(t, u)`: the variance the noise adds along eigenvalue u of mode k by time t, one
    /// sub-piece at a time: `v ← v e^{−2uΔΛ} + 2∫₀ʰ e^{−2u(Λ(b) − Λ(b − τ))} dτ`. Where κ is
    /// constant the step is exact; on a ramp, `Λ(b) − Λ(b − τ) = κ_b τ − κ′τ²/2` and the
    /// integral is taken to first order in κ′ (fourth order in h overall, and exact in the
    /// stiff limit v → 1/(uκ)).
    fn noise_variance(&self, mode: &ModeRate, u: f64, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        // v at every knot, integrated once per (mode, u) and kept: each call then integrates
        // only the piece that holds t (the same sub-pieces in the same order as from 0, so the
        // same bits), and a long schedule costs its length once, not once per time point.
        let at_knots = {
            let key = (
                mode.half,
                mode.base.to_bits(),
                mode.slope.to_bits(),
                u.to_bits(),
            );
            let mut cache = self.knot_variance.lock().unwrap();
            cache
                .entry(key)
                .or_insert_with(|| {
                    let knots = &self.gamma.knots;
                    let mut v = Vec::with_capacity(knots.len());
                    v.push(0.0);
                    for w in knots.windows(2) {
                        let last = v[v.len() - 1];
                        v.push(self.piece_variance(mode, u, w[0].0, w[1].0, last));
                    }
                    std::sync::Arc::new(v)
                })
                .clone()
        };
        // The last knot before t starts the piece that holds it.
        let i = self.gamma.knots.partition_point(|k| k.0 < t).max(1) - 1;
        self.piece_variance(mode, u, self.gamma.knots[i].0, t, at_knots[i])
    }

    /// `v` carried across the piece (a, b) of the schedule (no knot inside it).
    fn piece_variance(&self, mode: &ModeRate, u: f64, a: f64, b: f64, mut v: f64) -> f64 {
        let (ga, gb) = (self.gamma.at(a), self.gamma.at_left_of(b));
        let linear = self.gamma.shape == Shape::Ramp && ga != gb;
        let gamma_slope = if linear { (gb - ga) / (b - a) } else { 0.0 };
        let kappa_slope = mode.slope * gamma_slope;
        let parts = if linear {
            ramp_parts(u * kappa_slope.abs() * (b - a) * (b - a))
        } else {
            1
        };
        let h = (b - a) / parts as f64;
        let kappa_at = |s: f64| mode.base + mode.slope * (ga + gamma_slope * (s - a));
        for i in 1..=parts {
            let end = if i == parts { b } else { a + h * i as f64 };
            let start = a + h * (i - 1) as f64;
            // κ is linear on the sub-piece: ΔΛ by the trapezoid rule is exact.
            let delta = 0.5 * (kappa_at(start) + kappa_at(end)) * (end - start);
            let c = 2.0 * u * kappa_at(end);
            let fresh = 2.0 * h * (phi1(c * h) + u * kappa_slope * h * h * phi2(c * h));
            v = v * (-2.0 * u * delta).exp() + fresh;
        }
        v
    }

    /// `diag_k f_k(U_d)` for per-mode functions of U_d's eigenvalues, in U_d's form.
    fn assemble(&self, f: impl Fn(&ModeRate, f64) -> f64) -> Linear {
        let apply = |mode: &ModeRate| match (&self.u_d, &self.eigen) {
            (Linear::Scalar(u, d), _) => Linear::Scalar(f(mode, *u), *d),
            (Linear::Diagonal(v), _) => Linear::Diagonal(v.map(|u| f(mode, u))),
            (_, Some((values, vectors))) => {
                let scaled = values.map(|u| f(mode, u));
                Linear::Dense(vectors * DMatrix::from_diagonal(&scaled) * vectors.transpose())
            }
            (Linear::Dense(_), None) => unreachable!("a dense U_d has its eigenvectors"),
        };
        Linear::block_diag(&apply(&self.modes[0]), &apply(&self.modes[1]))
    }

    /// `E(t) = diag_k exp(−Λ_k(t) U_d)`.
    pub fn propagator(&self, t: f64) -> Linear {
        self.assemble(|m, u| (-self.lambda(m, t) * u).exp())
    }

    /// The covariance of `x_t | x_0`.
    pub fn noise(&self, t: f64) -> Linear {
        self.assemble(|m, u| self.noise_variance(m, u, t))
    }

    /// `A(t) = diag_k κ_k(γ(t)) U_d`.
    pub fn drift(&self, t: f64) -> Linear {
        let g = self.gamma.at(t);
        self.assemble(|m, u| (m.base + m.slope * g) * u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_bad_ones_are_refused() {
        for s in ["0.5", "step:0.2,1.5,0.6", "ramp:0,1,0.5,2,-0.25"] {
            let sch: Schedule = s.parse().unwrap();
            assert_eq!(sch.to_string(), s);
        }
        for bad in [
            "x",
            "step:0.2,1.5",
            "ramp:0.1,1,0.2,0.5,0.3",
            "wave:1",
            "step:0.1,nan,0.2",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn values_and_integrals() {
        let s: Schedule = "step:0.2,1.5,0.6".parse().unwrap();
        assert_eq!((s.at(1.0), s.at(1.5), s.at(9.0)), (0.2, 0.6, 0.6));
        assert!((s.integral(2.0) - (0.2 * 1.5 + 0.6 * 0.5)).abs() < 1e-15);
        let r: Schedule = "ramp:0,2,1".parse().unwrap();
        assert!((r.at(1.0) - 0.5).abs() < 1e-15);
        assert!((r.integral(1.0) - 0.25).abs() < 1e-15);
        assert!((r.integral(3.0) - (1.0 + 1.0)).abs() < 1e-15);
    }

    /// The integrator against a fine midpoint quadrature of `2∫ exp(−2u(Λ(t) − Λ(s))) ds`.
    #[test]
    fn noise_variance_matches_quadrature() {
        let mode = ModeRate {
            half: 0,
            base: 1.0,
            slope: -1.0,
        };
        for spec in ["0.3", "step:0.2,0.7,0.6", "ramp:-0.5,1.2,0.8"] {
            let other = ModeRate {
                half: 1,
                ..mode.clone()
            };
            let drift = ScheduledDrift::new(
                &Linear::identity(1),
                vec![mode.clone(), other],
                spec.parse().unwrap(),
            );
            for (u, t) in [(1.0, 0.4), (2.5, 1.7), (0.3, 3.0), (100.0, 1.0)] {
                let n = 1_000_000;
                let h = t / n as f64;
                let lt = drift.lambda(&mode, t);
                let quad: f64 = (0..n)
                    .map(|i| {
                        let s = (i as f64 + 0.5) * h;
                        2.0 * (-2.0 * u * (lt - drift.lambda(&mode, s))).exp() * h
                    })
                    .sum();
                let v = drift.noise_variance(&mode, u, t);
                // The quadrature's own error is about 1e-9 here.
                assert!(
                    (v - quad).abs() < 1e-7 * quad,
                    "{spec} u={u} t={t}: {v} vs {quad}"
                );
            }
        }
    }
}
