//! How [`super::GpuEngine`]'s `advance` cuts a range of time points into dispatches of the step
//! kernel: a pure function of the sizes, so its rules are tested without a device.
//!
//! Op 2j evaluates the logits at point j (labels, change times), op 2j + 1 steps j → j + 1; a
//! dispatch runs ops `op0..op1`. A dispatch never crosses a chunk of the plan (its coefficients
//! are uploaded from one chunk), never holds more than `ops_per_dispatch` ops (driver watchdogs,
//! lavapipe's loop budget) or more than `points_per_upload` points (one storage binding), and ends
//! right after evaluating a recorded point, so the reduction that follows sees that point's state.

use std::ops::Range;

/// The sizes that bound a dispatch.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Time points per chunk of the plan.
    pub chunk_len: usize,
    /// Ops per dispatch (at least 1).
    pub ops_per_dispatch: usize,
    /// Time points whose coefficients fit one upload (at least 1).
    pub points_per_upload: usize,
}

/// One dispatch: ops `op0..op1`, then the reduction into recorder slot `record`, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub op0: usize,
    pub op1: usize,
    pub record: Option<usize>,
}

impl Span {
    /// The first time point whose coefficients the dispatch reads.
    pub fn first_point(&self) -> usize {
        self.op0 / 2
    }

    /// The last time point whose coefficients the dispatch reads.
    pub fn last_point(&self) -> usize {
        (self.op1 - 1) / 2
    }
}

/// The dispatches that move particles from point `from` to `to` (evaluating `to` too), recording
/// at `points[slots]` (ascending grid indices, each in `from..=to`).
#[cfg(test)]
pub fn schedule(
    from: usize,
    to: usize,
    bounds: Bounds,
    points: &[usize],
    slots: Range<usize>,
) -> Vec<Span> {
    schedule_ops(2 * from, 2 * to + 1, bounds, points, slots)
}

/// The same from op `op0` (a dispatch may start at an update) to op `end_op`, recording at
/// `points[slots]` (the points whose evaluation is in `op0..end_op`): what is left of a range
/// after its first dispatches.
pub fn schedule_ops(
    op0: usize,
    end_op: usize,
    bounds: Bounds,
    points: &[usize],
    slots: Range<usize>,
) -> Vec<Span> {
    let per_dispatch = bounds.ops_per_dispatch.max(1);
    let per_upload = bounds.points_per_upload.max(1);
    let chunk_len = bounds.chunk_len.max(1);
    let mut spans = Vec::new();
    let mut next_slot = slots.start;
    let mut op = op0;
    while op < end_op {
        let j = op / 2;
        let chunk_end = (j / chunk_len + 1) * chunk_len;
        let mut op1 = end_op
            .min(2 * chunk_end)
            .min(op + per_dispatch)
            .min(2 * (j + per_upload));
        let record = if next_slot < slots.end && 2 * points[next_slot] < op1 {
            op1 = 2 * points[next_slot] + 1;
            next_slot += 1;
            Some(next_slot - 1)
        } else {
            None
        };
        spans.push(Span {
            op0: op,
            op1,
            record,
        });
        op = op1;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule of the module docs, for one set of sizes.
    fn check(from: usize, to: usize, bounds: Bounds, points: &[usize]) {
        let spans = schedule(from, to, bounds, points, 0..points.len());
        let what = format!("{from}..={to} {bounds:?} {points:?}");
        // Contiguous, non-empty, covering exactly 2·from ..= 2·to.
        assert_eq!(spans.first().map(|s| s.op0), Some(2 * from), "{what}");
        assert_eq!(spans.last().map(|s| s.op1), Some(2 * to + 1), "{what}");
        for w in spans.windows(2) {
            assert_eq!(w[0].op1, w[1].op0, "{what}");
        }
        for s in &spans {
            assert!(s.op0 < s.op1, "{what}: empty {s:?}");
            assert!(
                s.op1 - s.op0 <= bounds.ops_per_dispatch,
                "{what}: long {s:?}"
            );
            let c = bounds.chunk_len;
            assert_eq!(
                s.first_point() / c,
                s.last_point() / c,
                "{what}: crosses a chunk {s:?}"
            );
            assert!(
                s.last_point() - s.first_point() < bounds.points_per_upload,
                "{what}"
            );
            if let Some(slot) = s.record {
                assert_eq!(s.op1, 2 * points[slot] + 1, "{what}: {s:?}");
            }
        }
        // Every slot recorded once, in order.
        let recorded: Vec<usize> = spans.iter().filter_map(|s| s.record).collect();
        assert_eq!(recorded, (0..points.len()).collect::<Vec<_>>(), "{what}");
    }

    #[test]
    fn spans_follow_every_rule() {
        for (chunk_len, ops, upload) in [(1, 1, 1), (7, 3, 100), (64, 100, 5), (1000, 100, 1000)] {
            let bounds = Bounds {
                chunk_len,
                ops_per_dispatch: ops,
                points_per_upload: upload,
            };
            check(0, 0, bounds, &[0]);
            check(0, 40, bounds, &[]);
            check(0, 40, bounds, &[0, 1, 2, 17, 39, 40]);
            check(13, 40, bounds, &[14, 20, 21]);
            check(5, 5, bounds, &[]);
        }
    }

    /// Cutting a range after any of its dispatches and scheduling the rest from there (with
    /// other bounds) keeps every rule: the dispatches of an advance may change length midway.
    #[test]
    fn the_rest_of_a_range_schedules_from_any_op() {
        let points = [0, 3, 4, 17, 39, 40];
        let short = Bounds {
            chunk_len: 16,
            ops_per_dispatch: 3,
            points_per_upload: 100,
        };
        let long = Bounds {
            ops_per_dispatch: 40,
            ..short
        };
        let first = schedule(0, 40, short, &points, 0..points.len());
        for cut in 1..first.len() {
            let done = &first[..cut];
            let next = done
                .iter()
                .rev()
                .find_map(|s| s.record)
                .map_or(0, |s| s + 1);
            let rest = schedule_ops(done[cut - 1].op1, 81, long, &points, next..points.len());
            let all: Vec<Span> = done.iter().chain(&rest).copied().collect();
            assert_eq!(all.last().map(|s| s.op1), Some(81));
            for w in all.windows(2) {
                assert_eq!(w[0].op1, w[1].op0);
            }
            let recorded: Vec<usize> = all.iter().filter_map(|s| s.record).collect();
            assert_eq!(recorded, (0..points.len()).collect::<Vec<_>>(), "cut {cut}");
            for s in &rest {
                assert!(s.op1 - s.op0 <= 40 && s.first_point() / 16 == s.last_point() / 16);
                if let Some(slot) = s.record {
                    assert_eq!(s.op1, 2 * points[slot] + 1);
                }
            }
        }
    }

    #[test]
    fn one_dispatch_when_nothing_bounds_it() {
        let bounds = Bounds {
            chunk_len: 1001,
            ops_per_dispatch: 10_000,
            points_per_upload: 10_000,
        };
        let spans = schedule(0, 1000, bounds, &[], 0..0);
        assert_eq!(
            spans,
            [Span {
                op0: 0,
                op1: 2001,
                record: None
            }]
        );
    }
}
