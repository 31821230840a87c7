//! Config → model: the forward process and the target a study runs on.

use anyhow::{Context, Result};
use nalgebra::DVector;

use crate::config::Config;
use crate::linalg::Linear;
use crate::model::coupling::{
    Coupling, Pairing, mode_frame, mode_frame_rows, paired_classes, paired_mean,
};
use crate::model::labels::Labels;
use crate::model::precision::{build_spd, build_u};
use crate::model::rotation::build_q;
use crate::model::target::class_mean;
use crate::model::{Empirical, Mixture, Model, Process, Target};

/// The mixture model of a config, with the class direction when it is the two-class target.
pub struct Built {
    pub process: Process,
    pub mixture: Mixture,
    /// Unit class direction m/‖m‖ (two-class target), the natural order parameter.
    pub class_dir: Option<DVector<f64>>,
}

impl Built {
    pub fn mixture_model(&self) -> Model {
        Model {
            process: self.process.clone(),
            target: Target::Mixture(self.mixture.clone()),
        }
    }
}

/// The shared within-class covariance C: σ²I, or σ²W for `--within-cov` (W built like U, so in
/// its cheapest form and checked symmetric positive definite).
fn within_cov(cfg: &Config, d: usize) -> Result<Linear> {
    let sigma2 = cfg.sigma * cfg.sigma;
    match &cfg.within_cov {
        None => Ok(Linear::Scalar(sigma2, d)),
        Some(spec) => Ok(build_spd("within-cov", spec, d, cfg.seed.wrapping_add(1))?.scale(sigma2)),
    }
}

pub fn build(cfg: &Config) -> Result<Built> {
    if let Some(coupling) = &cfg.coupling {
        return build_coupled(cfg, coupling);
    }
    let d = cfg.dim;
    let u = build_u(&cfg.u, d, cfg.seed)?;
    let cov = within_cov(cfg, d)?;
    let (mixture, class_dir) = match &cfg.mixture_file {
        Some(path) => (Mixture::from_file(path, cov).context("mixture-file")?, None),
        None => {
            let m = class_mean(
                &cfg.mean,
                &u,
                d,
                cfg.mean_norm2.unwrap_or(d as f64),
                cfg.seed,
            )?;
            let dir = (m.norm() > 0.0).then(|| m.normalize());
            let mixture = Mixture {
                cov,
                ..Mixture::two_class(m, cfg.sigma)
            };
            (mixture, dir)
        }
    };
    anyhow::ensure!(
        mixture.dim() == d,
        "mixture-file: dimension {} does not match dim = {d}",
        mixture.dim()
    );
    // Rotations toward the soft directions need a class direction; a general mixture offers its
    // leading mean.
    let dir = class_dir.clone().or_else(|| {
        mixture
            .means
            .iter()
            .find(|m| m.norm() > 0.0)
            .map(|m| m.normalize())
    });
    let q = build_q(&cfg.q, &u, dir.as_ref(), cfg.q_lambdas.as_deref(), cfg.seed)?;
    let process = Process::new(u, q)?;
    Ok(Built {
        process,
        mixture,
        class_dir,
    })
}

/// Two coupled modalities of dimension d, in the mode frame ([`crate::model::coupling`]):
/// U = diag(κ_c U_d, κ_d U_d) (and the coupling's rotation or schedule), C = σ²I in dimension 2d;
/// classes from m_x (`mean`, norm² `mean-norm2`) and m_y at `pair-angle` to it, paired as
/// `pairing` says, or the joint classes of a mixture file (given in (x, y)).
fn build_coupled(cfg: &Config, coupling: &Coupling) -> Result<Built> {
    anyhow::ensure!(
        cfg.within_cov.is_none(),
        "within-cov: not supported with --coupling (the modalities share C = σ²I)"
    );
    let d = cfg.dim;
    let u_d = build_u(&cfg.u, d, cfg.seed)?;
    let process = coupling.process(&u_d)?;
    let sigma2 = cfg.sigma * cfg.sigma;
    if let Some(path) = &cfg.mixture_file {
        let mut mixture =
            Mixture::from_file(path, Linear::Scalar(sigma2, 2 * d)).context("mixture-file")?;
        anyhow::ensure!(
            mixture.dim() == 2 * d,
            "mixture-file: {} columns of means, but two coupled modalities of d = {d} need {}",
            mixture.dim(),
            2 * d
        );
        mixture.means = mixture.means.iter().map(mode_frame).collect();
        return Ok(Built {
            process,
            mixture,
            class_dir: None,
        });
    }
    let m_x = class_mean(&cfg.mean, &u_d, d, cfg.mean_norm2(), cfg.seed)?;
    let m = mode_frame(&paired_mean(&m_x, cfg.pair_angle)?);
    let means = paired_classes(&m, cfg.pairing)?;
    let class_dir = (cfg.pairing == Pairing::Shared && m.norm() > 0.0).then(|| m.normalize());
    let k = means.len();
    Ok(Built {
        process,
        mixture: Mixture {
            weights: vec![1.0 / k as f64; k],
            means,
            cov: Linear::Scalar(sigma2, 2 * d),
        },
        class_dir,
    })
}

/// The empirical target: training points from a file (pairs (x, y) mapped into the mode frame
/// for coupled modalities), or drawn from the mixture with the seed.
pub fn training_set(cfg: &Config, built: &Built) -> Result<Empirical> {
    match &cfg.train_file {
        Some(path) => {
            let mut data =
                Empirical::from_file(path, Some(built.process.dim())).context("train-file")?;
            if cfg.coupling.is_some() {
                data.points = mode_frame_rows(&data.points);
            }
            Ok(data)
        }
        None => Ok(Empirical {
            points: built
                .mixture
                .sample_training_set(cfg.n_train_or_default(), cfg.seed),
        }),
    }
}

/// The classes of the training file's points (`train-labels`), checked against its N points.
pub fn training_labels(cfg: &Config, data: &Empirical) -> Result<Option<Labels>> {
    cfg.train_labels
        .as_ref()
        .map(|path| Labels::from_file(path, data.points.nrows()))
        .transpose()
}
