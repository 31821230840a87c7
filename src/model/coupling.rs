//! Two modalities x, y ∈ R^d noised jointly (docs/mathematics.md §9). A symmetric coupling
//! matrix K makes the joint stationary precision `K ⊗ U_d`. K's eigenvectors split the joint
//! space into two modes: the common mode (x + y)/√2 and the difference mode (x − y)/√2, each
//! relaxing at K's eigenvalue κ times U_d. The joint process is built in the **mode frame**
//! z = (c, d), c = (x + y)/√2 and d = (x − y)/√2 per feature, where U = diag(κ_c U_d, κ_d U_d) is
//! as cheap as U_d (diagonal for a diagonal U_d): plans and theory stay O(d). The frame is an
//! orthogonal map and its own inverse ([`mode_frame`]); inputs in (x, y) are mapped in and samples
//! mapped back out. A rotating coupling adds `Q = ω J ⊗ I_d` between x and y, which turns one mode
//! into the other; a schedule γ(t) changes the rates, not the modes ([`super::schedule`]).
//!
//! (Over 500 lines: 175 of its 664 are the unit tests of the code above them.)

use std::sync::Arc;

use anyhow::{Result, anyhow, ensure};
use nalgebra::{DMatrix, DVector};

use super::Process;
use super::schedule::{ModeRate, Schedule, ScheduledDrift};
use crate::linalg::{Form, Linear};

/// The two symmetric families of K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `K = [[1, −γ], [−γ, 1]]`: κ = 1 − γ (common), 1 + γ (difference); stable for |γ| < 1.
    Additive,
    /// `K = [[1 + γ, −γ], [−γ, 1 + γ]]`: κ = 1 (common), 1 + 2γ (difference); stable for γ > −½.
    Diffusive,
}

/// How strong the coupling is, and where.
#[derive(Clone, Debug, PartialEq)]
pub enum Strength {
    /// One γ for every feature, constant or a schedule γ(t).
    Uniform(Schedule),
    /// γ_i per feature i (constant; needs a diagonal U_d so that K_i ⊗ u_i stay symmetric).
    Features(Vec<f64>),
}

/// How the two modalities are coupled (`--coupling`).
#[derive(Clone, Debug, PartialEq)]
pub enum Coupling {
    Symmetric {
        kind: Kind,
        strength: Strength,
    },
    /// The additive K with a rotation `Q = ω J ⊗ I_d` between the modalities (J = [[0, 1],
    /// [−1, 0]]): A = (I + Q)(K ⊗ U_d) has complex eigenvalues, an asymmetric coupling.
    Rotating {
        gamma: f64,
        omega: f64,
    },
}

/// One mode of the coupled process: its name, its unit direction (a, b) in the modality plane
/// (the mode is `a·x + b·y`), its half of the mode frame (0: first d coordinates, 1: last d) and
/// K's eigenvalue along it, `κ(γ) = base + slope·γ`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    pub name: &'static str,
    pub direction: [f64; 2],
    pub half: usize,
    pub base: f64,
    pub slope: f64,
}

impl Mode {
    pub fn kappa(&self, gamma: f64) -> f64 {
        self.base + self.slope * gamma
    }

    /// The label a class has on this mode: classes whose means project onto the mode alike
    /// share it (group indices in order of first appearance).
    pub fn groups(&self, means: &[DVector<f64>]) -> Vec<usize> {
        let projected: Vec<DVector<f64>> = means.iter().map(|m| project(self, m)).collect();
        let scale = projected
            .iter()
            .map(|p| p.amax())
            .fold(0.0, f64::max)
            .max(1e-300);
        let mut firsts: Vec<usize> = vec![];
        projected
            .iter()
            .enumerate()
            .map(|(i, p)| {
                match firsts
                    .iter()
                    .position(|&f| (&projected[f] - p).amax() <= 1e-9 * scale)
                {
                    Some(g) => g,
                    None => {
                        firsts.push(i);
                        firsts.len() - 1
                    }
                }
            })
            .collect()
    }
}

impl Kind {
    fn modes(self) -> [Mode; 2] {
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let (common, difference) = match self {
            Kind::Additive => (-1.0, 1.0),
            Kind::Diffusive => (0.0, 2.0),
        };
        [
            Mode {
                name: "common",
                direction: [h, h],
                half: 0,
                base: 1.0,
                slope: common,
            },
            Mode {
                name: "difference",
                direction: [h, -h],
                half: 1,
                base: 1.0,
                slope: difference,
            },
        ]
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Additive => "additive",
            Kind::Diffusive => "diffusive",
        }
    }

    fn bound(self) -> &'static str {
        match self {
            Kind::Additive => "|γ| < 1 (K = [[1, −γ], [−γ, 1]] must be positive definite)",
            Kind::Diffusive => "γ > −½ (K = [[1+γ, −γ], [−γ, 1+γ]] must be positive definite)",
        }
    }

    /// K's diagonal and off-diagonal entries at γ.
    fn entries(self, g: f64) -> (f64, f64) {
        match self {
            Kind::Additive => (1.0, -g),
            Kind::Diffusive => (1.0 + g, -g),
        }
    }
}

impl Coupling {
    /// A constant additive coupling.
    pub fn additive(g: f64) -> Self {
        Coupling::Symmetric {
            kind: Kind::Additive,
            strength: Strength::Uniform(Schedule::constant(g)),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Coupling::Symmetric { kind, .. } => *kind,
            Coupling::Rotating { .. } => Kind::Additive,
        }
    }

    /// Every γ the coupling takes (at the knots of a schedule, where its extremes are).
    fn gammas(&self) -> Vec<f64> {
        match self {
            Coupling::Symmetric {
                strength: Strength::Uniform(s),
                ..
            } => s.knots.iter().map(|k| k.1).collect(),
            Coupling::Symmetric {
                strength: Strength::Features(g),
                ..
            } => g.clone(),
            Coupling::Rotating { gamma, .. } => vec![*gamma],
        }
    }

    /// The γ of the stationary law: the constant, the mean over features, or the value a
    /// schedule settles at after its last knot.
    pub fn gamma(&self) -> f64 {
        match self {
            Coupling::Symmetric {
                strength: Strength::Uniform(s),
                ..
            } => s.last(),
            Coupling::Symmetric {
                strength: Strength::Features(g),
                ..
            } => g.iter().sum::<f64>() / g.len() as f64,
            Coupling::Rotating { gamma, .. } => *gamma,
        }
    }

    /// The schedule, when γ changes with time.
    pub fn schedule(&self) -> Option<&Schedule> {
        match self {
            Coupling::Symmetric {
                strength: Strength::Uniform(s),
                ..
            } if s.as_constant().is_none() => Some(s),
            _ => None,
        }
    }

    /// Refuses a coupling outside its stability bound (K must be positive definite at every
    /// γ it takes), and per-feature values that do not match d.
    pub fn check(&self, d: Option<usize>) -> Result<()> {
        let kind = self.kind();
        for g in self.gammas() {
            ensure!(
                g.is_finite() && kind.modes().iter().all(|m| m.kappa(g) > 0.0),
                "coupling: γ = {g} is outside the stability bound {} of the {} coupling, or the \
                 joint process does not relax",
                kind.bound(),
                kind.name()
            );
        }
        if let Coupling::Rotating { omega, .. } = self {
            ensure!(
                omega.is_finite(),
                "coupling: the rotation ω must be a finite number"
            );
        }
        if let (
            Coupling::Symmetric {
                strength: Strength::Features(g),
                ..
            },
            Some(d),
        ) = (self, d)
        {
            ensure!(
                g.len() == d,
                "coupling: features gives {} values of γ but each modality has d = {d} features",
                g.len()
            );
        }
        Ok(())
    }

    /// The common and difference modes (K's eigenvectors, the same for every γ).
    pub fn modes(&self) -> [Mode; 2] {
        self.kind().modes()
    }

    /// The joint precision `K ⊗ U_d` in the (x, y) frame (2d × 2d, dense, x first) at the
    /// stationary γ; per feature, `K_i ⊗ u_i` on each pair (x_i, y_i). Studies run in the mode
    /// frame ([`Coupling::process`]); this is the same matrix as a generic sampler sees it.
    pub fn joint_precision(&self, u_d: &Linear) -> Result<Linear> {
        let u = u_d.to_dense();
        let d = u.nrows();
        let kind = self.kind();
        let (diag, off) = match self {
            Coupling::Symmetric {
                strength: Strength::Features(g),
                ..
            } => {
                ensure!(
                    u_d.form() != Form::Dense,
                    "coupling: per-feature γ needs a diagonal U (--u identity, scalar or diag): \
                     K_i ⊗ U with a dense U is not symmetric"
                );
                let (a, b): (Vec<f64>, Vec<f64>) = g.iter().map(|&g| kind.entries(g)).unzip();
                (
                    DMatrix::from_diagonal(&DVector::from_vec(a)) * &u,
                    DMatrix::from_diagonal(&DVector::from_vec(b)) * &u,
                )
            }
            _ => {
                let (a, b) = kind.entries(self.gamma());
                (&u * a, &u * b)
            }
        };
        let mut out = DMatrix::zeros(2 * d, 2 * d);
        out.view_mut((0, 0), (d, d)).copy_from(&diag);
        out.view_mut((d, d), (d, d)).copy_from(&diag);
        out.view_mut((0, d), (d, d)).copy_from(&off);
        out.view_mut((d, 0), (d, d)).copy_from(&off);
        Ok(Linear::from_dense(out))
    }

    /// The rates `κ_c, κ_d` of each feature at γ (per feature, or one γ for all).
    fn kappas(&self, g: f64, d: usize) -> [DVector<f64>; 2] {
        let gammas = match self {
            Coupling::Symmetric {
                strength: Strength::Features(g),
                ..
            } => DVector::from_vec(g.clone()),
            _ => DVector::from_element(d, g),
        };
        self.modes().map(|m| gammas.map(|g| m.kappa(g)))
    }

    /// The joint forward process in the mode frame: U = diag(κ_c U_d, κ_d U_d), the rotation of a
    /// rotating coupling, and the time-dependent drift of a schedule.
    pub fn process(&self, u_d: &Linear) -> Result<Process> {
        let d = u_d.dim();
        self.check(Some(d))?;
        let features = matches!(
            self,
            Coupling::Symmetric {
                strength: Strength::Features(_),
                ..
            }
        );
        ensure!(
            !features || u_d.form() != Form::Dense,
            "coupling: per-feature γ needs a diagonal U (--u identity, scalar or diag): K_i ⊗ U \
             with a dense U is not symmetric"
        );
        let [kc, kd] = self.kappas(self.gamma(), d);
        let scaled = |k: &DVector<f64>| {
            if features {
                Linear::Diagonal(k.component_mul(&u_d.diagonal()))
            } else {
                u_d.scale(k[0])
            }
        };
        let u = Linear::block_diag(&scaled(&kc), &scaled(&kd));
        let q = match self {
            // ω J ⊗ I in (x, y) is −ω J ⊗ I in (c, d).
            Coupling::Rotating { omega, .. } => {
                let mut q = DMatrix::zeros(2 * d, 2 * d);
                for i in 0..d {
                    q[(i, d + i)] = -omega;
                    q[(d + i, i)] = *omega;
                }
                Linear::Dense(q)
            }
            _ => Linear::Scalar(0.0, 2 * d),
        };
        let process = Process::new(u, q)?;
        Ok(match self.schedule() {
            Some(s) => {
                let rates = self
                    .modes()
                    .iter()
                    .map(|m| ModeRate {
                        half: m.half,
                        base: m.base,
                        slope: m.slope,
                    })
                    .collect();
                process.with_schedule(Arc::new(ScheduledDrift::new(u_d, rates, s.clone())))
            }
            None => process,
        })
    }
}

/// Maps a joint vector between the (x, y) frame and the mode frame (c, d), c = (x + y)/√2,
/// d = (x − y)/√2 per feature; the map is orthogonal and its own inverse.
pub fn mode_frame(v: &DVector<f64>) -> DVector<f64> {
    let d = v.len() / 2;
    let h = std::f64::consts::FRAC_1_SQRT_2;
    DVector::from_fn(2 * d, |i, _| {
        let (j, k) = (i % d, i / d);
        if k == 0 {
            h * (v[j] + v[d + j])
        } else {
            h * (v[j] - v[d + j])
        }
    })
}

/// [`mode_frame`] on every row of an N × 2d matrix.
pub fn mode_frame_rows(points: &DMatrix<f64>) -> DMatrix<f64> {
    let mut out = points.clone();
    for (i, row) in points.row_iter().enumerate() {
        out.set_row(i, &mode_frame(&row.transpose()).transpose());
    }
    out
}

/// [`mode_frame`] on f32 rows of length 2d, in place (samples on their way out).
pub fn mode_frame_f32(x: &mut [f32], dim: usize) {
    let d = dim / 2;
    let h = std::f64::consts::FRAC_1_SQRT_2;
    for row in x.chunks_exact_mut(dim) {
        for j in 0..d {
            let (a, b) = (f64::from(row[j]), f64::from(row[d + j]));
            row[j] = (h * (a + b)) as f32;
            row[d + j] = (h * (a - b)) as f32;
        }
    }
}

/// The joint class mean (m_x, m_y): m_y has m_x's norm and makes `angle` degrees with it (0
/// aligned, 90 orthogonal); its part orthogonal to m_x follows the alternating pattern
/// (1, −1, 1, …) made orthogonal to m_x, or a coordinate axis where that degenerates.
pub fn paired_mean(m_x: &DVector<f64>, angle: f64) -> Result<DVector<f64>> {
    let d = m_x.len();
    ensure!(
        angle.is_finite() && (0.0..=180.0).contains(&angle),
        "pair-angle: {angle} must be between 0 and 180 degrees"
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
    let (cos, sin) = (angle.to_radians().cos(), angle.to_radians().sin());
    let m_y = if sin.abs() < 1e-12 {
        m_x * cos.signum()
    } else {
        ensure!(
            d >= 2,
            "coupling: d = {d}: class means at an angle need d ≥ 2 per modality"
        );
        let u = orthogonal(alternating)
            .or_else(|| {
                (0..d).find_map(|k| orthogonal(DVector::from_fn(d, |i, _| f64::from(i == k))))
            })
            .ok_or_else(|| anyhow!("coupling: no direction orthogonal to m_x"))?;
        m_x * cos + u * sin
    };
    Ok(DVector::from_iterator(
        2 * d,
        m_x.iter().chain(m_y.iter()).copied(),
    ))
}

/// How the classes of the two modalities go together (`--pairing`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Pairing {
    /// Paired data: one label for both modalities, classes ±(m_x, m_y).
    Shared,
    /// Each mode carries its own label: the four classes s_c·m_c + s_d·m_d (s = ±1), so the
    /// modes are independent and each speciates as the single-modality theory of its rate says.
    PerMode,
}

/// The class means of a pairing, in the mode frame, for the joint mean m = (m_x, m_y) given in
/// the mode frame.
pub fn paired_classes(m: &DVector<f64>, pairing: Pairing) -> Result<Vec<DVector<f64>>> {
    match pairing {
        Pairing::Shared => Ok(vec![m.clone(), -m]),
        Pairing::PerMode => {
            let [c, d] = Kind::Additive.modes().map(|mode| project(&mode, m));
            ensure!(
                c.norm() > 1e-12 * m.norm() && d.norm() > 1e-12 * m.norm(),
                "pairing: per-mode needs a class mean along both modes, but m_x and m_y are \
                 {} (use a pair-angle strictly between 0 and 180)",
                if d.norm() <= 1e-12 * m.norm() {
                    "aligned"
                } else {
                    "opposite"
                }
            );
            Ok(vec![&c + &d, &c - &d, -&c + &d, -&c - &d])
        }
    }
}

/// A mode's own d-dimensional process (its half of the mode frame): the joint U restricted to
/// the mode, Q = 0. None where the joint process does not leave the mode alone at a constant
/// rate (a rotation, a schedule).
pub fn mode_process(joint: &Process, mode: &Mode) -> Result<Option<Process>> {
    if joint.schedule.is_some() || joint.q.to_dense().amax() > 0.0 {
        return Ok(None);
    }
    let d = joint.dim() / 2;
    let u = joint.u.block(mode.half * d, d);
    Ok(Some(Process::new(u, Linear::Scalar(0.0, d))?))
}

/// Joint points in the mode frame (N × 2d) in one mode's coordinates (N × d).
pub fn mode_coordinates(mode: &Mode, points: &DMatrix<f64>) -> DMatrix<f64> {
    let d = points.ncols() / 2;
    points.columns(mode.half * d, d).into_owned()
}

/// The projection of a joint vector in the mode frame onto a mode: its half, the other zeroed.
pub fn project(mode: &Mode, v: &DVector<f64>) -> DVector<f64> {
    let d = v.len() / 2;
    DVector::from_fn(2 * d, |i, _| if i / d == mode.half { v[i] } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_frame_diagonalises_the_joint_precision() {
        let u_d = Linear::Diagonal(DVector::from_vec(vec![1.0, 2.0, 0.5]));
        let d = 3;
        // The frame map as a matrix R (orthogonal, its own inverse).
        let r = DMatrix::from_fn(2 * d, 2 * d, |i, j| {
            mode_frame(&DVector::from_fn(2 * d, |k, _| f64::from(k == j)))[i]
        });
        assert!((&r * &r - DMatrix::identity(2 * d, 2 * d)).amax() < 1e-15);
        for spec in [
            "additive:0.3",
            "diffusive:-0.2",
            "additive:features:0.1,0.5,-0.3",
            "rotating:0.4,1.5",
        ] {
            let c: Coupling = spec.parse().unwrap();
            assert_eq!(c.to_string(), spec);
            let p = c.process(&u_d).unwrap();
            // The same U as K ⊗ U_d in (x, y), and as cheap as U_d.
            let xy = c.joint_precision(&u_d).unwrap().to_dense();
            assert!((&r * xy * &r - p.u.to_dense()).amax() < 1e-12, "{spec}");
            assert_eq!(p.u.form(), Form::Diagonal, "{spec}");
            // The rotation ω J ⊗ I of (x, y).
            let omega = if spec.starts_with("rotating") {
                1.5
            } else {
                0.0
            };
            let q_xy = DMatrix::from_fn(2 * d, 2 * d, |i, j| {
                if j == i + d {
                    omega
                } else if i == j + d {
                    -omega
                } else {
                    0.0
                }
            });
            assert!((&r * q_xy * &r - p.q.to_dense()).amax() < 1e-12, "{spec}");
        }
        // κ on each mode: the difference mode of feature 0 relaxes at κ_d(γ)·u_0 = 1 + 2γ.
        let p = "diffusive:0.25"
            .parse::<Coupling>()
            .unwrap()
            .process(&u_d)
            .unwrap();
        assert!((p.u.diagonal()[d] - 1.5).abs() < 1e-12);
        let v = DVector::from_fn(2 * d, |i, _| (i as f64 + 1.0).sin());
        let sum = project(&p_modes()[0], &v) + project(&p_modes()[1], &v);
        assert!(
            (sum - &v).amax() < 1e-15,
            "the two modes span the joint space"
        );
        let mut rows = DMatrix::from_fn(2, 2 * d, |i, j| (i * 7 + j) as f64);
        let back = mode_frame_rows(&mode_frame_rows(&rows));
        assert!((&back - &rows).amax() < 1e-12);
        let mut x: Vec<f32> = rows.transpose().iter().map(|&v| v as f32).collect();
        mode_frame_f32(&mut x, 2 * d);
        rows = mode_frame_rows(&rows);
        let want: Vec<f32> = rows.transpose().iter().map(|&v| v as f32).collect();
        assert_eq!(x, want);
    }

    fn p_modes() -> [Mode; 2] {
        Coupling::additive(0.0).modes()
    }

    #[test]
    fn stability_bounds_are_enforced() {
        for bad in [
            "additive:1",
            "additive:-1.5",
            "additive:x",
            "diffusive:-0.5",
            "additive:step:0.2,1,1.2",
            "additive:ramp:0,2,-1",
            "rotating:0.1",
            "wave:0.1",
        ] {
            let e = bad.parse::<Coupling>().unwrap_err().to_string();
            assert!(e.contains("coupling"), "{bad}: {e}");
        }
        let e = "diffusive:-0.6"
            .parse::<Coupling>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("γ > −½"), "{e}");
        let per: Coupling = "additive:features:0.1,0.2".parse().unwrap();
        assert!(
            per.check(Some(3))
                .unwrap_err()
                .to_string()
                .contains("d = 3")
        );
        let dense = Linear::Dense(DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]));
        assert!(per.joint_precision(&dense).is_err());
    }

    #[test]
    fn paired_means_make_their_angle_with_equal_norms() {
        for d in [2, 3, 8] {
            let m_x = DVector::from_element(d, 1.0);
            for angle in [0.0, 30.0, 90.0, 180.0] {
                let m = paired_mean(&m_x, angle).unwrap();
                let (x, y) = (m.rows(0, d), m.rows(d, d));
                assert!((y.norm() - x.norm()).abs() < 1e-12);
                let cos = x.dot(&y) / (x.norm() * y.norm());
                assert!(
                    (cos - angle.to_radians().cos()).abs() < 1e-12,
                    "d = {d}, {angle}°"
                );
            }
        }
        assert!(paired_mean(&DVector::from_element(1, 1.0), 90.0).is_err());
        assert!(paired_mean(&DVector::from_element(2, 1.0), 200.0).is_err());
    }

    #[test]
    fn per_mode_classes_carry_one_label_per_mode() {
        let c = Coupling::additive(0.5);
        let m = mode_frame(&paired_mean(&DVector::from_element(4, 1.0), 90.0).unwrap());
        let classes = paired_classes(&m, Pairing::PerMode).unwrap();
        assert_eq!(classes.len(), 4);
        let [common, difference] = c.modes();
        // Classes 0, 1 share the common mode's sign, classes 0, 2 the difference mode's.
        let pc = |k: usize| project(&common, &classes[k]);
        let pd = |k: usize| project(&difference, &classes[k]);
        assert!((pc(0) - pc(1)).amax() < 1e-12 && (pc(0) + pc(2)).amax() < 1e-12);
        assert!((pd(0) - pd(2)).amax() < 1e-12 && (pd(0) + pd(1)).amax() < 1e-12);
        assert_eq!(common.groups(&classes), vec![0, 0, 1, 1]);
        assert_eq!(difference.groups(&classes), vec![0, 1, 0, 1]);
        let shared = paired_classes(&m, Pairing::Shared).unwrap();
        assert_eq!(common.groups(&shared), vec![0, 1]);
        let aligned = mode_frame(&paired_mean(&DVector::from_element(4, 1.0), 0.0).unwrap());
        assert!(paired_classes(&aligned, Pairing::PerMode).is_err());
    }

    /// A step schedule composes the two constant processes: E(t) = E₂(t − t₁) E₁(t₁) and
    /// Σ(t) = E₂ Σ₁(t₁) E₂ᵀ + Σ₂(t − t₁), with a dense U_d.
    #[test]
    fn a_step_schedule_composes_its_constant_pieces() {
        let u_d = Linear::Dense(DMatrix::from_row_slice(2, 2, &[1.5, 0.4, 0.4, 0.8]));
        let scheduled: Coupling = "diffusive:step:0.6,0.7,-0.3".parse().unwrap();
        let p = scheduled.process(&u_d).unwrap();
        let p1 = "diffusive:0.6"
            .parse::<Coupling>()
            .unwrap()
            .process(&u_d)
            .unwrap();
        let p2 = "diffusive:-0.3"
            .parse::<Coupling>()
            .unwrap()
            .process(&u_d)
            .unwrap();
        let (t1, t) = (0.7, 1.9);
        let e1 = p1.propagator(t1);
        let e2 = p2.propagator(t - t1);
        let e = e2.mul(&e1);
        let sigma = e2
            .mul(&p1.sigma_with(t1, &e1))
            .mul(&e2.transpose())
            .add(&p2.sigma_with(t - t1, &e2));
        let close = |a: &Linear, b: &Linear| (a.to_dense() - b.to_dense()).amax() < 1e-12;
        assert!(close(&p.propagator(t), &e));
        assert!(close(&p.sigma_with(t, &e), &sigma));
        // Before the switch it is the first process; the drift follows γ(t).
        assert!(close(&p.propagator(0.3), &p1.propagator(0.3)));
        assert!(close(&p.drift(0.3), &p1.a) && close(&p.drift(1.0), &p2.a));
        // The stationary law is that of the last γ.
        assert!(close(&p.u, &p2.u));
    }
}
