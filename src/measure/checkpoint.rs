//! Scale-out and interruption: a study's particles split into shards (`--shard I/N`), and a
//! measurement in flight captured at step boundaries (`--checkpoint-every`) so that it resumes
//! bit for bit.
//!
//! Particles are independent and keyed by their index, so a slice of the indices is a study of its
//! own; the statistics are monoids, so slices merge. A snapshot holds the statistics folded so far,
//! the index of the batch in flight, the step it reached and its particles (the random numbers
//! need no state: they are keyed by id and step).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::engine::Particles;

/// Slice `index` of `count` of a study's particles (or clone pairs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole study as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Particle indices of this slice of `0..total`: `[I·P/N, (I+1)·P/N)`, so the slices of all
    /// `N` shards cover `0..total` once, in order.
    pub fn range(&self, total: u64) -> Range<u64> {
        let bound = |i: u64| (u128::from(i) * u128::from(total) / u128::from(self.count)) as u64;
        bound(self.index)..bound(self.index + 1)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let form = "expected I/N with 0 ≤ I < N, e.g. 0/3 (shards are numbered from 0)";
        let (i, n) = s.split_once('/').ok_or_else(|| format!("'{s}': {form}"))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("'{s}': {form}"))
        };
        let (index, count) = (parse(i)?, parse(n)?);
        if count == 0 || index >= count {
            return Err(format!("'{s}': {form}"));
        }
        Ok(Shard { index, count })
    }
}

impl Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How often a checkpoint is written: every so many time steps of the batch in flight, or every
/// so much wall time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Every {
    Steps(u64),
    Seconds(f64),
}

impl FromStr for Every {
    type Err = String;

    /// `500` (steps), `30s`, `1.5m`, `2h`, `250ms`.
    fn from_str(s: &str) -> Result<Self, String> {
        let form = "expected a number of steps (500) or a duration (30s, 10m, 1.5h, 250ms)";
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return if n > 0 {
                Ok(Every::Steps(n))
            } else {
                Err(format!("'{s}': must be positive; {form}"))
            };
        }
        let split = t
            .rfind(|c: char| !c.is_ascii_alphabetic())
            .map(|i| i + 1) // the unit is the trailing letters (1e3s)
            .ok_or_else(|| format!("'{s}': {form}"))?;
        let (num, unit) = t.split_at(split);
        let scale = match unit {
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("'{s}': unknown unit '{unit}'; {form}")),
        };
        match num.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e9 => Ok(Every::Seconds(v * scale)),
            _ => Err(format!("'{s}': {form}")),
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Every::Steps(n) => write!(f, "{n}"),
            Every::Seconds(s) => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Every {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A measurement's state (folded statistics, the batch in flight) with the particle sets it
/// refers to by index.
#[derive(Clone, Debug)]
pub struct Snapshot<S> {
    pub state: S,
    pub particles: Vec<Particles>,
}

/// A measurement state that can be resumed from.
pub trait Resumable {
    /// The first unit (particle, clone pair) not folded in.
    fn next(&self) -> u64;
    /// Steps already advanced by the batch in flight, summed over its particles, given its
    /// particle sets (0 where the measurement does not count them).
    fn flight_work(&self, _particles: &[Particles]) -> u64 {
        0
    }
}

impl<S: Resumable> Snapshot<S> {
    /// The work a resumed measurement skips, in the units of its progress report: `per_unit`
    /// for each completed unit of `range`, and the batch in flight's advanced steps.
    pub fn work_done(&self, range: &Range<u64>, per_unit: u64) -> u64 {
        self.state.next().saturating_sub(range.start) * per_unit
            + self.state.flight_work(&self.particles)
    }
}

/// Where snapshots go.
pub type Sink<'a, S> = Box<dyn FnMut(Snapshot<S>) -> Result<()> + 'a>;

/// Decides when a measurement saves a snapshot, and hands it to the sink. A stop request
/// (SIGINT, SIGTERM) makes one snapshot due at once; after it nothing more is saved, so the
/// checkpoint left behind is the state at the stop.
pub struct Checkpointer<'a, S> {
    every: Every,
    last: Instant,
    steps: u64,
    stop_saved: bool,
    sink: Sink<'a, S>,
}

impl<'a, S> Checkpointer<'a, S> {
    pub fn new(every: Every, sink: Sink<'a, S>) -> Self {
        Checkpointer {
            every,
            last: Instant::now(),
            steps: 0,
            stop_saved: false,
            sink,
        }
    }

    /// Longest advance between two chances to save.
    pub fn segment(&self) -> usize {
        match self.every {
            Every::Steps(n) => n.min(super::SEGMENT as u64) as usize,
            Every::Seconds(_) => super::SEGMENT,
        }
    }

    /// Counts `steps` just advanced; whether a snapshot is due.
    pub fn due(&mut self, steps: u64) -> bool {
        self.steps += steps;
        if self.stop_saved {
            return false;
        }
        if super::stop_reason().is_some() {
            return true;
        }
        match self.every {
            Every::Steps(n) => self.steps >= n,
            Every::Seconds(s) => self.last.elapsed() >= Duration::from_secs_f64(s),
        }
    }

    /// Saves a snapshot now.
    pub fn save(&mut self, snap: Snapshot<S>) -> Result<()> {
        if self.stop_saved {
            return Ok(());
        }
        (self.sink)(snap)?;
        self.steps = 0;
        self.last = Instant::now();
        self.stop_saved = super::stop_reason().is_some();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_particles_once_in_order() {
        for total in [0u64, 1, 2, 7, 1000, 1 << 48] {
            for n in [1u64, 2, 3, 7, 64] {
                let mut next = 0;
                for i in 0..n {
                    let r = Shard { index: i, count: n }.range(total);
                    assert_eq!(r.start, next);
                    assert!(r.end >= r.start);
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
        assert_eq!(Shard { index: 1, count: 3 }.range(10), 3..6);
    }

    #[test]
    fn shard_and_interval_forms_parse() {
        assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
        for bad in ["5/5", "1/0", "1", "a/3", "-1/3", "1/3/4"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("I/N"), "{bad}: {e}");
        }
        assert_eq!("500".parse::<Every>(), Ok(Every::Steps(500)));
        assert_eq!("30s".parse::<Every>(), Ok(Every::Seconds(30.0)));
        assert_eq!("1.5m".parse::<Every>(), Ok(Every::Seconds(90.0)));
        assert_eq!("2h".parse::<Every>(), Ok(Every::Seconds(7200.0)));
        assert_eq!("250ms".parse::<Every>(), Ok(Every::Seconds(0.25)));
        for bad in ["0", "-3s", "10x", "s", "", "nans"] {
            assert!(bad.parse::<Every>().is_err(), "{bad}");
        }
        for e in [Every::Steps(7), Every::Seconds(0.25)] {
            assert_eq!(e.to_string().parse::<Every>(), Ok(e));
        }
    }
}
