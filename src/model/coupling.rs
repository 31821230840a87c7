//! Two modalities x, y ∈ R^d noised jointly (docs/mathematics.md §9). The additive coupling
//! `K = [[1, −γ], [−γ, 1]]` makes the joint stationary precision `U = K ⊗ U_d`: a process in
//! dimension 2d like any other, so both engines run it through the same plan. K's eigenvectors
//! split it into two modes that never mix: the common mode (x + y)/√2 relaxes at (1 − γ)·U_d, the
//! difference mode (x − y)/√2 at (1 + γ)·U_d.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, anyhow, ensure};
use nalgebra::{DMatrix, DVector};

use crate::linalg::Linear;

/// How the two modalities are coupled (`--coupling`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Coupling {
    /// `K = [[1, −γ], [−γ, 1]]`, stable for |γ| < 1.
    Additive(f64),
}

/// One mode of the coupled process: its name, K's eigenvalue κ (the mode relaxes at κ·U_d) and
/// its unit direction (a, b) in the modality plane (the mode is `a·x + b·y`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    pub name: &'static str,
    pub kappa: f64,
    pub direction: [f64; 2],
}

impl Coupling {
    pub fn gamma(&self) -> f64 {
        match self {
            Coupling::Additive(g) => *g,
        }
    }

    /// Refuses a coupling outside its stability bound (K must be positive definite).
    pub fn check(&self) -> Result<()> {
        let g = self.gamma();
        ensure!(
            g.is_finite() && g.abs() < 1.0,
            "coupling: γ = {g} is outside the stability bound |γ| < 1 (K = [[1, −γ], [−γ, 1]] \
             must be positive definite, or the joint process does not relax)"
        );
        Ok(())
    }

    /// The common and difference modes.
    pub fn modes(&self) -> [Mode; 2] {
        let g = self.gamma();
        let h = std::f64::consts::FRAC_1_SQRT_2;
        [
            Mode {
                name: "common",
                kappa: 1.0 - g,
                direction: [h, h],
            },
            Mode {
                name: "difference",
                kappa: 1.0 + g,
                direction: [h, -h],
            },
        ]
    }

    /// The joint precision `K ⊗ U_d` (2d × 2d, x first).
    pub fn joint_precision(&self, u_d: &Linear) -> Linear {
        let u = u_d.to_dense();
        let d = u.nrows();
        let g = self.gamma();
        let mut out = DMatrix::zeros(2 * d, 2 * d);
        out.view_mut((0, 0), (d, d)).copy_from(&u);
        out.view_mut((d, d), (d, d)).copy_from(&u);
        out.view_mut((0, d), (d, d)).copy_from(&(&u * -g));
        out.view_mut((d, 0), (d, d)).copy_from(&(&u * -g));
        Linear::from_dense(out)
    }
}

/// The joint class mean (m_x, m_y): m_y is orthogonal to m_x with the same norm (the alternating
/// pattern (1, −1, 1, …) made orthogonal to m_x, or a coordinate axis where that degenerates).
pub fn paired_mean(m_x: &DVector<f64>) -> Result<DVector<f64>> {
    let d = m_x.len();
    ensure!(
        d >= 2,
        "coupling: d = {d}: orthogonal class means m_x ⟂ m_y need d ≥ 2"
    );
    let norm = m_x.norm();
    let orthogonal = |v: DVector<f64>| {
        let v = if norm > 0.0 {
            &v - m_x * (m_x.dot(&v) / (norm * norm))
        } else {
            v
        };
        (v.norm() > 1e-9).then(|| v.normalize() * norm)
    };
    let alternating = DVector::from_fn(d, |i, _| if i % 2 == 0 { 1.0 } else { -1.0 });
    let m_y = orthogonal(alternating)
        .or_else(|| (0..d).find_map(|k| orthogonal(DVector::from_fn(d, |i, _| f64::from(i == k)))))
        .ok_or_else(|| anyhow!("coupling: no direction orthogonal to m_x"))?;
    Ok(DVector::from_iterator(
        2 * d,
        m_x.iter().chain(m_y.iter()).copied(),
    ))
}

/// The projection of a joint vector (x, y) onto a mode: `(e eᵀ ⊗ I) v` for the mode's direction e.
pub fn project(mode: &Mode, v: &DVector<f64>) -> DVector<f64> {
    let d = v.len() / 2;
    let [a, b] = mode.direction;
    let c = DVector::from_fn(d, |i, _| a * v[i] + b * v[d + i]);
    DVector::from_iterator(
        2 * d,
        c.iter().map(|x| a * x).chain(c.iter().map(|x| b * x)),
    )
}

impl FromStr for Coupling {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let forms = "additive:GAMMA (|γ| < 1)";
        let (head, rest) = s.split_once(':').unwrap_or((s, ""));
        match head.trim() {
            "additive" => {
                let g: f64 = rest.trim().parse().map_err(|_| {
                    anyhow!("coupling (--coupling): '{s}': GAMMA must be a number; accepted forms: {forms}")
                })?;
                let c = Coupling::Additive(g);
                c.check()?;
                Ok(c)
            }
            _ => Err(anyhow!(
                "coupling (--coupling): cannot use '{s}': unknown form; accepted forms: {forms}"
            )),
        }
    }
}

impl fmt::Display for Coupling {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Coupling::Additive(g) => write!(f, "additive:{g}"),
        }
    }
}

super::spec::serde_as_text!(Coupling);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_diagonalise_the_joint_precision() {
        let c: Coupling = "additive:0.3".parse().unwrap();
        assert_eq!(c.to_string(), "additive:0.3");
        let d = 3;
        let u = c.joint_precision(&Linear::Diagonal(DVector::from_vec(vec![1.0, 2.0, 0.5])));
        let v = DVector::from_fn(2 * d, |i, _| (i as f64 + 1.0).sin());
        for m in c.modes() {
            // U acts on a mode's component as κ·U_d.
            let pv = project(&m, &v);
            let lhs = u.apply(&pv);
            let rhs = project(&m, &lhs);
            assert!(
                (&lhs - &rhs).amax() < 1e-12,
                "{}: U leaves the mode",
                m.name
            );
        }
        let sum = project(&c.modes()[0], &v) + project(&c.modes()[1], &v);
        assert!(
            (sum - &v).amax() < 1e-12,
            "the two modes span the joint space"
        );
        for bad in ["additive:1", "additive:-1.5", "additive:x", "diffusive:0.1"] {
            let e = bad.parse::<Coupling>().unwrap_err().to_string();
            assert!(e.contains("coupling"), "{bad}: {e}");
        }
        assert!(
            "additive:1"
                .parse::<Coupling>()
                .unwrap_err()
                .to_string()
                .contains("|γ| < 1")
        );
    }

    #[test]
    fn paired_means_are_orthogonal_with_equal_norms() {
        for d in [2, 3, 8] {
            let m_x = DVector::from_element(d, 1.0);
            let m = paired_mean(&m_x).unwrap();
            let (x, y) = (m.rows(0, d), m.rows(d, d));
            assert!(x.dot(&y).abs() < 1e-12, "d = {d}");
            assert!((y.norm() - x.norm()).abs() < 1e-12);
        }
        assert!(paired_mean(&DVector::from_element(1, 1.0)).is_err());
    }
}
