//! What a study checks before any work, from what was asked alone: settings it does not read
//! (refused as flags, reported from a config file), cloning under the deterministic flow, the
//! scale-out options against each other, and the memory and disk it will need. Front ends parse
//! and print; the decisions are here.

use std::path::Path;

use anyhow::{Result, bail, ensure};

use super::{Kind, resources};
use crate::config::{Backend, Config};
use crate::measure::Every;

/// What a front end was asked for, beside the resolved config.
#[derive(Clone, Copy, Default)]
pub struct Asked<'a> {
    /// The config keys given as flags.
    pub flags: &'a [String],
    /// The config keys a config file set.
    pub file_keys: &'a [String],
    /// The output directory.
    pub out: Option<&'a Path>,
    /// `--shard I/N`.
    pub shard: bool,
    /// `--checkpoint-every`.
    pub every: Option<Every>,
    /// `--devices`.
    pub devices: bool,
}

/// The checks before any work, with the warnings for the user.
pub fn preflight(kind: Kind, cfg: &Config, asked: &Asked) -> Result<Vec<String>> {
    let name = kind.name();
    let ignored = kind.ignores();
    if let Some(k) = asked.flags.iter().find(|k| ignored.contains(&k.as_str())) {
        bail!("--{k} has no effect on `{name}`; drop it (see regimes {name} --help)");
    }
    let mut warnings: Vec<String> = asked
        .file_keys
        .iter()
        .filter(|k| ignored.contains(&k.as_str()))
        .map(|k| format!("{k} (from the config file) has no effect on `{name}`"))
        .chain(resources::checkpoint_warning(asked.every, cfg))
        .collect();
    if matches!(kind, Kind::Speciation | Kind::Collapse) && !cfg.scheme.stochastic() {
        warnings.push(
            "the probability flow is deterministic: two clones never separate, so every clone \
             probability is 1 by construction (use --scheme euler-maruyama)"
                .to_string(),
        );
    }
    // Estimate what the study needs before anything large is allocated or written.
    resources::check_study(kind, cfg, asked.out)?;
    Ok(warnings)
}

/// The scale-out options of one study run (`--devices`, `--shard`, `--checkpoint-every`)
/// checked against the study and each other.
pub fn scale_out(kind: Kind, cfg: &Config, asked: &Asked) -> Result<()> {
    if asked.devices {
        ensure!(
            kind != Kind::Theory,
            "--devices has no effect on `theory`; drop it"
        );
        ensure!(
            asked.every.is_none(),
            "--devices with --checkpoint-every is not supported; run one process per device \
             with --shard I/N and --adapter instead"
        );
        ensure!(
            cfg.backend != Backend::Cpu && cfg.adapter.is_none(),
            "--devices picks GPU adapters itself; drop --backend cpu and --adapter"
        );
    }
    for (flag, given) in [
        ("shard", asked.shard),
        ("checkpoint-every", asked.every.is_some()),
    ] {
        if given {
            ensure!(
                kind != Kind::Theory,
                "--{flag} has no effect on `theory`; drop it"
            );
            ensure!(
                asked.out.is_some(),
                "--{flag} needs --out DIR (the {} lives there)",
                if flag == "shard" {
                    "shard's statistics for `regimes merge`"
                } else {
                    "checkpoint `regimes resume` reads"
                }
            );
        }
    }
    Ok(())
}
