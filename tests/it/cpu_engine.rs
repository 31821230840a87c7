//! The CPU engine against exact results: discrete Euler–Maruyama moments, determinism across
//! threads and batch sizes, replay of single particles.

use nalgebra::DVector;
use regimes::engine::cpu::reduce::record;
use regimes::engine::cpu::start;
use regimes::engine::cpu::step::{self, Scratch};
use regimes::engine::cpu::{CpuEngine, TILE};
use regimes::engine::{Engine, NO_LABEL, Particles, Recorder};
use regimes::measure::run::{RunSpec, run};

use regimes::plan::{Grid, Plan, Scheme, Start};
use regimes::rng::{self, rng_id};
use regimes::stats::PointStats;

use crate::common;
use crate::common::{
    ALL_SCHEMES, Shape, bits, dense_model, empirical, ids, mixture, plan_with, process,
};

fn spec(seed: u64, particles: u64, keep_samples: bool, batch: Option<usize>) -> RunSpec {
    RunSpec {
        seed,
        particles,
        keep_samples,
        batch,
    }
}

/// With one Gaussian component the Euler–Maruyama step is affine, so mean and covariance follow
/// `μ' = Mμ + P g`, `S' = M S Mᵀ + 2Δt I` exactly; the simulated moments must match within
/// their standard errors.
#[test]
fn euler_maruyama_moments_equal_exact_discrete_moments() {
    common::check_em_moments(&CpuEngine::new());
}

#[test]
fn results_are_identical_for_any_thread_count_and_batch_size() {
    for scheme in [Scheme::EulerMaruyama, Scheme::Exact, Scheme::Exponential] {
        identical_for_any_thread_count_and_batch_size(scheme);
    }
}

fn identical_for_any_thread_count_and_batch_size(scheme: Scheme) {
    let m = DVector::from_vec(vec![1.0, 1.0, -1.0]);
    let model = dense_model(vec![0.3, 0.7], vec![m.clone(), -m]);
    let grid = Grid::new(3.0, 60).unwrap();
    let plan = Plan::new(&model, grid.clone(), scheme, Start::Exact).unwrap();
    let go = |threads: usize, batch: usize| {
        let engine = CpuEngine::with_threads(threads).unwrap();
        let rec = Recorder::new(&plan, vec![0, 30, 60], vec![0.6, 0.0, 0.8]);
        run(
            &engine,
            &plan,
            spec(5, 5000, true, Some(batch)),
            rec,
            &mut |_| {},
        )
        .unwrap()
    };
    let a = go(1, 1024);
    let b = go(2, 4096);
    let c = go(2, 2048);
    for other in [&b, &c] {
        assert_eq!(a.samples, other.samples);
        assert_eq!(a.tally, other.tally);
        assert_eq!(a.recorder.stats, other.recorder.stats);
    }
    // A chunked plan computes the same coefficients.
    let chunked = Plan::new(&model, grid.clone(), scheme, Start::Exact)
        .unwrap()
        .with_chunk_len(7);
    let rec = Recorder::new(&chunked, vec![0, 30, 60], vec![0.6, 0.0, 0.8]);
    let d = run(
        &CpuEngine::new(),
        &chunked,
        spec(5, 5000, true, Some(2048)),
        rec,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(a.samples, d.samples);
    assert_eq!(a.recorder.stats, d.recorder.stats);
}

#[test]
fn any_particle_replays_alone() {
    let m = DVector::from_vec(vec![0.5, -1.0, 1.0]);
    let model = dense_model(vec![0.5, 0.5], vec![m.clone(), -m]);
    let plan = Plan::new(
        &model,
        Grid::new(2.0, 40).unwrap(),
        Scheme::EulerMaruyama,
        Start::Exact,
    )
    .unwrap();
    let engine = CpuEngine::new();
    let ids: Vec<u64> = (0..3000).map(|i| rng_id(i, 0)).collect();
    let mut all = engine.start(&plan, 9, &ids).unwrap();
    engine
        .advance(&plan, &mut all, 0, 40, &mut Recorder::none(&plan))
        .unwrap();
    let mut one = engine.start(&plan, 9, &[ids[2021]]).unwrap();
    engine
        .advance(&plan, &mut one, 0, 17, &mut Recorder::none(&plan))
        .unwrap();
    engine
        .advance(&plan, &mut one, 17, 40, &mut Recorder::none(&plan))
        .unwrap();
    let (all, one) = (engine.read(&all).unwrap(), engine.read(&one).unwrap());
    assert_eq!(&all.x[2021 * 3..2022 * 3], &one.x[..]);
    assert_eq!(all.label[2021], one.label[0]);
    assert_eq!(all.changed[2021], one.changed[0]);
}

#[test]
fn segments_record_each_point_once() {
    common::check_segments_record_once(&CpuEngine::new());
}

/// The scalar reference: one particle at a time through `kernel`, recording the final point.
fn scalar_run(plan: &Plan, seed: u64, ids: &[u64], to: usize, rec: &mut Recorder) -> Particles {
    let d = plan.dim;
    let key = rng::key(seed);
    let mut s = Scratch::new(plan);
    let mut p = Particles {
        dim: d,
        x: vec![0.0; ids.len() * d],
        ids: ids.to_vec(),
        label: vec![NO_LABEL; ids.len()],
        changed: vec![0; ids.len()],
        drawn: vec![NO_LABEL; ids.len()],
    };
    for (i, &id) in ids.iter().enumerate() {
        start::start(&plan.start, key, id, &mut p.x[i * d..(i + 1) * d], &mut s);
    }
    scalar_continue(plan, seed, &mut p, (0, to), rec);
    p
}

/// The scalar reference from time point `from` to `to` (evaluating at both), recording at `to`.
fn scalar_continue(
    plan: &Plan,
    seed: u64,
    p: &mut Particles,
    (from, to): (usize, usize),
    rec: &mut Recorder,
) {
    let d = plan.dim;
    let key = rng::key(seed);
    let mut s = Scratch::new(plan);
    let mut tile = PointStats::new(d, 0, 0);
    let n = p.len();
    for i in 0..n {
        let id = p.ids[i];
        let x = &mut p.x[i * d..(i + 1) * d];
        for j in from..=to {
            let chunk = plan.chunk(plan.chunk_of(j)).unwrap();
            let pt = plan.view(&chunk, j);
            let u = step::draw_uniforms(key, id, j);
            let draw = (u, &mut p.drawn[i], j == to && !rec.points.is_empty());
            let (label, purity) = step::evaluate(plan, &pt, x, draw, &mut s);
            if p.label[i] != label {
                p.label[i] = label;
                p.changed[i] = j as u32;
            }
            if j == to {
                // Statistics fold per engine tile, in particle order, then tile by tile.
                if i % TILE == 0 {
                    tile = PointStats::new(d, rec.directions.len() / d, plan.centers_count);
                }
                record(&mut tile, x, &rec.directions, label, purity);
                if i % TILE == TILE - 1 || i == n - 1 {
                    rec.stats[0].merge(&tile);
                }
            } else {
                step::update(plan, &pt, key, id, j, x, &mut s);
            }
        }
    }
}

/// The SIMD lanes compute exactly the scalar kernel's sequence: positions, labels, change times and
/// recorded statistics are bit-identical, for every plan form, both targets, dimensions that are
/// not multiples of the register blocks, and a partial last block of lanes.
#[test]
fn lanes_equal_the_scalar_kernel_bit_for_bit() {
    let grid = Grid::new(3.0, 30).unwrap();
    let engine = CpuEngine::with_threads(2).unwrap();
    for d in [1usize, 6, 13] {
        for shape in [
            Shape::Scalar,
            Shape::Diagonal,
            Shape::Rotated,
            Shape::DenseU,
        ] {
            // 150 training points: several softmax blocks, the last one partial.
            let cases = [mixture(d, 9), empirical(d, 150, 3)]
                .into_iter()
                .flat_map(|t| ALL_SCHEMES.map(|s| (t.clone(), s)))
                .filter(|(t, s)| common::runs_on(*s, t));
            for (target, scheme) in cases {
                let p = plan_with(process(d, shape, 5), target, grid.clone(), scheme);
                let ids = ids(37);
                let direction: Vec<f32> = (0..d).map(|i| (i as f32 + 1.0).recip()).collect();
                let mut want_rec = Recorder::new(&p, vec![30], direction.clone());
                let want = scalar_run(&p, 4, &ids, 30, &mut want_rec);
                let mut rec = Recorder::new(&p, vec![30], direction);
                let mut batch = engine.start(&p, 4, &ids).unwrap();
                engine.advance(&p, &mut batch, 0, 30, &mut rec).unwrap();
                let got = engine.read(&batch).unwrap();
                let what = format!("d={d} {shape:?} {:?} {scheme:?}", p.kind);
                assert_eq!(bits(&got.x), bits(&want.x), "{what}: positions");
                assert_eq!(got.label, want.label, "{what}: labels");
                assert_eq!(got.changed, want.changed, "{what}: change times");
                assert_eq!(rec.stats, want_rec.stats, "{what}: statistics");
            }
        }
    }
}

/// Pruning skips tiles of training points only where every weight is exactly zero, so it changes
/// no bit: pruned, unpruned and the scalar reference agree on a target of tight, far-apart
/// clusters (one per tile) where, late in the run, most tiles are pruned; and for every scheme.
#[test]
fn pruning_changes_no_bit_and_skips_most_tiles_late() {
    use nalgebra::DMatrix;
    // Three times as many tiles as a block has lanes: a block of 32 particles needs at most 32.
    let (d, clusters) = (6, 96);
    let mut r = regimes::rng::HostRng::new(9, "pruning test");
    let centres = DMatrix::from_fn(clusters, d, |_, _| r.normal() * 12.0);
    let points = DMatrix::from_fn(clusters * 64, d, |i, k| {
        centres[(i / 64, k)] + 0.3 * r.normal()
    });
    let target = regimes::model::Target::Empirical(regimes::model::Empirical { points });
    let grid = Grid::new(2.0, 40).unwrap();
    let pruned = CpuEngine::with_threads(2).unwrap();
    let full = CpuEngine::with_threads(2).unwrap().without_pruning();
    for scheme in ALL_SCHEMES
        .into_iter()
        .filter(|s| common::runs_on(*s, &target))
    {
        let p = plan_with(
            process(d, Shape::Scalar, 5),
            target.clone(),
            grid.clone(),
            scheme,
        );
        let ids = ids(100);
        let run = |engine: &CpuEngine| {
            let mut rec = Recorder::new(&p, vec![20, 40], vec![1.0; d]);
            let mut batch = engine.start(&p, 4, &ids).unwrap();
            engine.advance(&p, &mut batch, 0, 40, &mut rec).unwrap();
            (engine.read(&batch).unwrap(), rec.stats)
        };
        let (a, stats_a) = run(&pruned);
        let (b, stats_b) = run(&full);
        // The scalar reference records its final point only.
        let mut want_rec = Recorder::new(&p, vec![40], vec![1.0; d]);
        let want = scalar_run(&p, 4, &ids, 40, &mut want_rec);
        assert_eq!(bits(&a.x), bits(&b.x), "{scheme:?}: pruned vs unpruned");
        assert_eq!(bits(&a.x), bits(&want.x), "{scheme:?}: pruned vs scalar");
        assert_eq!((&a.label, &a.changed), (&b.label, &b.changed), "{scheme:?}");
        assert_eq!(stats_a, stats_b, "{scheme:?}: statistics");
        assert_eq!(
            stats_a[1..],
            want_rec.stats,
            "{scheme:?}: statistics vs scalar"
        );
        let counts = pruned.take_pruning();
        assert!(
            full.take_pruning().iter().all(|c| c[0] == 0),
            "{scheme:?}: off means off"
        );
        let [skipped, total] = counts[36..]
            .iter()
            .fold([0, 0], |a, c| [a[0] + c[0], a[1] + c[1]]);
        assert!(
            skipped * 2 > total,
            "{scheme:?}: late points prune most tiles ({skipped} of {total})"
        );
    }
}

/// A plan that draws each particle's training point once: the lanes equal the scalar reference
/// bit for bit (positions, labels, change times, drawn points) across advances cut anywhere and
/// chunks of 7 points, with the posterior's purity at the recorded point; and where a block holds
/// some draws while others are still to be drawn (half the particles reset), each lane still
/// follows the reference.
#[test]
fn drawing_once_lanes_equal_the_scalar_kernel() {
    let grid = Grid::new(3.0, 30).unwrap();
    let engine = CpuEngine::with_threads(2).unwrap();
    for d in [1usize, 6, 13] {
        for shape in [
            Shape::Scalar,
            Shape::Diagonal,
            Shape::Rotated,
            Shape::DenseU,
        ] {
            let what = format!("d={d} {shape:?}");
            let p = plan_with(
                process(d, shape, 5),
                empirical(d, 150, 3),
                grid.clone(),
                Scheme::Exact,
            )
            .drawing_once()
            .unwrap()
            .with_chunk_len(7);
            let ids = ids(37);
            let at = |to| Recorder::new(&p, vec![to], vec![]);
            let mut want_rec = at(30);
            let want = scalar_run(&p, 4, &ids, 30, &mut want_rec);
            let mut batch = engine.start(&p, 4, &ids).unwrap();
            engine.advance(&p, &mut batch, 0, 12, &mut at(12)).unwrap();
            let mut mixed = engine.read(&batch).unwrap();
            let mut rec = at(30);
            engine.advance(&p, &mut batch, 12, 30, &mut rec).unwrap();
            let got = engine.read(&batch).unwrap();
            assert_eq!(bits(&got.x), bits(&want.x), "{what}: positions");
            // At a recorded point a held draw still gives the posterior's purity.
            assert!(
                rec.stats[0].purity.mean.iter().all(|m| m.is_finite()),
                "{what}: purity"
            );
            assert_eq!(rec.stats, want_rec.stats, "{what}: statistics");
            assert_eq!(
                (&got.label, &got.changed, &got.drawn),
                (&want.label, &want.changed, &want.drawn),
                "{what}"
            );
            assert!(got.drawn.iter().all(|&k| k < 150), "{what}: all drawn");

            for k in mixed.drawn.iter_mut().step_by(2) {
                *k = NO_LABEL;
            }
            let mut want = mixed.clone();
            scalar_continue(&p, 4, &mut want, (12, 30), &mut at(30));
            let mut batch = engine.load(&p, 4, &mixed).unwrap();
            engine.advance(&p, &mut batch, 12, 30, &mut at(30)).unwrap();
            let got = engine.read(&batch).unwrap();
            assert_eq!(bits(&got.x), bits(&want.x), "{what}: mixed positions");
            assert_eq!(
                (&got.label, &got.drawn),
                (&want.label, &want.drawn),
                "{what}: mixed"
            );
        }
    }
}

/// Holding the first draw samples the law of drawing at every step (exact in law, see
/// `plan::Draws`): under a rotation, on 150 training points, the final training points of 20 000
/// trajectories have the same histogram (two-sample χ², within 5σ of its mean) and the same mean
/// last-change time (within 4 s.e.) either way; a held trajectory ends on its drawn point.
#[test]
fn drawing_once_samples_the_law_of_drawing_every_step() {
    let d = 6;
    let grid = Grid::new(3.0, 60).unwrap();
    let plan = || {
        plan_with(
            process(d, Shape::Rotated, 5),
            empirical(d, 150, 3),
            grid.clone(),
            Scheme::Exact,
        )
    };
    let (every, once) = (plan(), plan().drawing_once().unwrap());
    let engine = CpuEngine::with_threads(2).unwrap();
    let ids = ids(20_000);
    let run = |p: &Plan, seed| {
        let mut batch = engine.start(p, seed, &ids).unwrap();
        engine
            .advance(p, &mut batch, 0, 60, &mut Recorder::new(p, vec![], vec![]))
            .unwrap();
        engine.read(&batch).unwrap()
    };
    let (a, b) = (run(&every, 1), run(&once, 2));
    assert_eq!(
        b.label, b.drawn,
        "held trajectories end on their drawn points"
    );
    let histogram = |p: &Particles| {
        let mut h = vec![0f64; 150];
        p.label.iter().for_each(|&k| h[k as usize] += 1.0);
        h
    };
    let (ha, hb) = (histogram(&a), histogram(&b));
    let cells: Vec<(f64, f64)> = ha
        .into_iter()
        .zip(hb)
        .filter(|(x, y)| x + y > 0.0)
        .collect();
    let chi2: f64 = cells.iter().map(|(x, y)| (x - y).powi(2) / (x + y)).sum();
    let df = (cells.len() - 1) as f64;
    eprintln!(
        "{:?}",
        cells
            .iter()
            .enumerate()
            .filter(|c| c.1.1 > 0.0)
            .collect::<Vec<_>>()
    );
    assert!(
        chi2 < df + 5.0 * (2.0 * df).sqrt(),
        "χ² {chi2:.1} on {df} degrees of freedom"
    );
    let moments = |p: &Particles| {
        let t: Vec<f64> = p.changed.iter().map(|&c| f64::from(c)).collect();
        let n = t.len() as f64;
        let mean = t.iter().sum::<f64>() / n;
        let var = t.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var / n)
    };
    let ((ma, va), (mb, vb)) = (moments(&a), moments(&b));
    let z = (ma - mb) / (va + vb).sqrt();
    assert!(
        z.abs() < 4.0,
        "mean last change {ma:.3} vs {mb:.3} ({z:.2} s.e.)"
    );
}

/// The exact scheme's streaming draw picks training point μ with its posterior weight: 40 000
/// particles at one position, on 150 points in 3 tiles with spread weights (early, t = T), drawn
/// once; the histogram of their drawn points against the softmax of the plan's logits (computed
/// in f64) passes a χ² test within 5σ. (Before the point inside a tile had its own uniform, the
/// draw leant to the tiles' last points: χ² in the thousands.)
#[test]
fn the_drawn_points_follow_the_posterior() {
    let d = 6;
    let p = plan_with(
        process(d, Shape::Rotated, 5),
        empirical(d, 150, 3),
        Grid::new(1.0, 10).unwrap(),
        Scheme::Exact,
    )
    .drawing_once()
    .unwrap();
    let n = 40_000;
    let x: Vec<f32> = (0..d).map(|i| 0.3 * i as f32 - 0.5).collect();
    let particles = Particles {
        dim: d,
        x: x.repeat(n),
        ids: ids(n),
        label: vec![NO_LABEL; n],
        changed: vec![0; n],
        drawn: vec![NO_LABEL; n],
    };
    let engine = CpuEngine::with_threads(2).unwrap();
    let mut batch = engine.load(&p, 7, &particles).unwrap();
    engine
        .advance(&p, &mut batch, 0, 0, &mut Recorder::new(&p, vec![], vec![]))
        .unwrap();
    let drawn = engine.read(&batch).unwrap().drawn;
    let chunk = p.chunk(0).unwrap();
    let pt = p.view(&chunk, 0);
    let mut y = vec![0.0f32; d];
    step::apply(p.b_form, pt.b, &x, &mut y);
    let logits: Vec<f64> = pt
        .w
        .chunks_exact(d)
        .zip(pt.bias)
        .map(|(w, &b)| f64::from(b) + w.iter().zip(&y).map(|(a, b)| f64::from(a * b)).sum::<f64>())
        .collect();
    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = logits.iter().map(|l| (l - top).exp()).sum();
    let mut counts = vec![0f64; 150];
    drawn.iter().for_each(|&k| counts[k as usize] += 1.0);
    let expected: Vec<f64> = logits
        .iter()
        .map(|l| n as f64 * (l - top).exp() / total)
        .collect();
    assert!(
        expected.iter().filter(|&&e| e >= 5.0).count() > 100,
        "the weights are spread over the tiles"
    );
    // Cells with fewer than 5 expected draws pooled into one.
    let (mut chi2, mut cells, mut pool) = (0.0, 0usize, (0.0, 0.0));
    for (o, e) in counts.iter().zip(&expected) {
        if *e < 5.0 {
            pool = (pool.0 + o, pool.1 + e);
        } else {
            chi2 += (o - e).powi(2) / e;
            cells += 1;
        }
    }
    if pool.1 > 0.0 {
        chi2 += (pool.0 - pool.1).powi(2) / pool.1;
        cells += 1;
    }
    let df = (cells - 1) as f64;
    assert!(
        chi2 < df + 5.0 * (2.0 * df).sqrt(),
        "χ² {chi2:.1} on {df} degrees of freedom"
    );
}
