//! `branch-times`: the times a clone experiment branches at, or `auto` (speciation refines them
//! around the measured crossing: `study::speciation::auto`).

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The branch times of a clone experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Repr", into = "Repr")]
pub enum BranchTimes {
    /// These times (forward time, in (0, t-max]).
    At(Vec<f64>),
    /// A coarse pass, then times inserted around φ's crossing of F(1) until the bracket adds
    /// less than half φ's noise to t_S (speciation only).
    Auto,
}

impl BranchTimes {
    /// The given times; None for `auto`.
    pub fn times(&self) -> Option<&[f64]> {
        match self {
            BranchTimes::At(t) => Some(t),
            BranchTimes::Auto => None,
        }
    }
}

/// How [`BranchTimes`] reads and writes: a list of numbers or the word "auto".
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Times(Vec<f64>),
    Word(String),
}

impl From<BranchTimes> for Repr {
    fn from(b: BranchTimes) -> Repr {
        match b {
            BranchTimes::At(t) => Repr::Times(t),
            BranchTimes::Auto => Repr::Word("auto".into()),
        }
    }
}

impl TryFrom<Repr> for BranchTimes {
    type Error = anyhow::Error;
    fn try_from(r: Repr) -> Result<BranchTimes> {
        match r {
            Repr::Times(t) => Ok(BranchTimes::At(t)),
            Repr::Word(w) => w.parse(),
        }
    }
}

impl std::str::FromStr for BranchTimes {
    type Err = anyhow::Error;
    /// `auto`, or times separated by commas.
    fn from_str(s: &str) -> Result<BranchTimes> {
        if s.trim() == "auto" {
            return Ok(BranchTimes::Auto);
        }
        let mut times = vec![];
        for part in s.split(',') {
            let t: f64 = match part.trim().parse() {
                Ok(t) => t,
                Err(_) => bail!(
                    "'{}' is not a number (give times T1,T2,... or auto)",
                    part.trim()
                ),
            };
            if !t.is_finite() {
                bail!("{t} is not finite");
            }
            times.push(t);
        }
        Ok(BranchTimes::At(times))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_times_or_auto_and_writes_them_back() {
        assert_eq!("auto".parse::<BranchTimes>().unwrap(), BranchTimes::Auto);
        let t: BranchTimes = "0.5, 1,2".parse().unwrap();
        assert_eq!(t, BranchTimes::At(vec![0.5, 1.0, 2.0]));
        assert!("1,inf".parse::<BranchTimes>().is_err());
        assert!("soon".parse::<BranchTimes>().is_err());
        for b in [BranchTimes::Auto, t] {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(serde_json::from_str::<BranchTimes>(&json).unwrap(), b);
        }
        assert!(serde_json::from_str::<BranchTimes>("\"never\"").is_err());
    }
}
