//! What the machine can do at best, measured rather than looked up: f32 arithmetic throughput
//! (the ceiling for GFLOP/s) and memory read bandwidth (the ceiling for bytes/s). Both run on
//! every thread the engine uses, and are cached per process and thread count.
//!
//! The arithmetic probe runs `acc = fma(acc, m, a)` on [`FUSED_CHAINS`] independent vectors of 8
//! lanes: the fused multiply-add the engines' products are made of (two flops per instruction),
//! and, for the record, `acc = acc · m + a` unfused on [`CHAINS`]. Enough independent chains hide
//! the latency (16 vectors are 8 AVX-512 or 16 AVX2 registers: two FMA pipes of four cycles), so
//! the loop is limited by throughput. The fused peak is the ceiling the engines' GFLOP/s are
//! measured against; it is twice the unfused one on cores whose adds run only on the FMA pipes,
//! and equal to it on cores with separate add pipes (AMD Zen 4 measured 113 and 112 GFLOP/s per
//! thread). The bandwidth probe sums a [`BANDWIDTH_BYTES`] buffer, far larger than any cache.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use multiversion::multiversion;

use crate::rng;
use rayon::prelude::*;
use serde::Serialize;

/// Independent accumulator vectors of 8 f32 lanes in the arithmetic probe (96 lanes in all).
pub const CHAINS: usize = 12;

/// Flops per iteration of the arithmetic probe: one multiply and one add per lane.
const FLOPS_PER_ITER: f64 = (CHAINS * 8 * 2) as f64;

/// Independent accumulator vectors of 8 f32 lanes in the fused probe (128 lanes in all).
pub const FUSED_CHAINS: usize = 16;

/// Size of the bandwidth probe's buffer.
pub const BANDWIDTH_BYTES: usize = 256 << 20;

/// How long the arithmetic probe runs.
const PROBE_TIME: Duration = Duration::from_millis(200);

/// Measured peaks of the host on a number of threads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Peak {
    pub threads: usize,
    /// f32 fused multiply-add throughput (two flops each), 1e9 flops per second.
    pub gflops: f64,
    /// Read bandwidth from memory, bytes per second (None where only the flops are known).
    pub bytes_per_s: Option<f64>,
    /// Standard normals per second the CPU engine's generator draws (None where unknown).
    pub normals_per_s: Option<f64>,
    /// How the numbers were obtained, for the records.
    pub source: String,
    /// How much two runs of the arithmetic probe differed (the faster over the slower, minus
    /// one): a few per cent on an idle machine, more when other work shares it. None where not
    /// measured.
    pub spread: Option<f64>,
}

/// `iters` rounds of multiply-then-add on every lane; returns a value that depends on all of them.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn spin(iters: u64, m: f32, a: f32) -> f32 {
    let mut acc = [[0.0f32; 8]; CHAINS];
    for (c, chain) in acc.iter_mut().enumerate() {
        for (l, x) in chain.iter_mut().enumerate() {
            *x = (c * 8 + l) as f32 * 1e-3;
        }
    }
    for _ in 0..iters {
        // One flat loop: nested, LLVM's AVX-512 vectoriser turns it into gathers and scatters.
        for x in acc.as_flattened_mut() {
            *x = *x * m + a;
        }
    }
    acc.iter().flatten().sum()
}

/// `iters` rounds of a fused multiply-add on every lane; returns a value that depends on all.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn spin_fused(iters: u64, m: f32, a: f32) -> f32 {
    let mut acc = [[0.0f32; 8]; FUSED_CHAINS];
    for (c, chain) in acc.iter_mut().enumerate() {
        for (l, x) in chain.iter_mut().enumerate() {
            *x = (c * 8 + l) as f32 * 1e-3;
        }
    }
    for _ in 0..iters {
        for x in acc.as_flattened_mut() {
            *x = x.mul_add(m, a);
        }
    }
    acc.iter().flatten().sum()
}

/// `blocks` draws of 4 normals for [`crate::engine::cpu::lanes::LANES`] particles, exactly as the CPU
/// engine draws its noise; returns a value that depends on all of them.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn draw(blocks: u32) -> f32 {
    const L: usize = crate::engine::cpu::lanes::LANES;
    let key = rng::key(1);
    let id_lo: [u32; L] = std::array::from_fn(|l| l as u32);
    let id_hi = [0u32; L];
    let mut acc = [0.0f32; L];
    for b in 0..blocks {
        let z = rng::normal4_lanes(key, &id_lo, &id_hi, 7, b);
        for row in &z {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
    acc.iter().sum()
}

/// Sum of `data` in 32 independent lanes (so that it vectorises: f32 addition is not associative).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn sum(data: &[f32]) -> f32 {
    let mut acc = [0.0f32; 32];
    let mut blocks = data.chunks_exact(32);
    for block in &mut blocks {
        for (a, x) in acc.iter_mut().zip(block) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + blocks.remainder().iter().sum::<f32>()
}

/// Units of work per second of `work(iters)` (`per_iter` units per iteration) on every thread of
/// `pool`: calibrated on one thread, then sized to run for about [`PROBE_TIME`] everywhere.
fn probe(pool: &rayon::ThreadPool, per_iter: f64, work: impl Fn(u32) -> f32 + Sync) -> f64 {
    black_box(work(1_000));
    let mut iters = 10_000u32;
    let seconds_per_iter = loop {
        let t = Instant::now();
        black_box(work(black_box(iters)));
        let e = t.elapsed();
        if e >= Duration::from_millis(10) || iters >= u32::MAX / 4 {
            break e.as_secs_f64() / iters as f64;
        }
        iters *= 4;
    };
    let iters = (PROBE_TIME.as_secs_f64() / seconds_per_iter).clamp(1.0, u32::MAX as f64) as u32;
    let t = Instant::now();
    black_box(pool.broadcast(|_| work(black_box(iters))));
    let elapsed = t.elapsed().as_secs_f64();
    pool.current_num_threads() as f64 * iters as f64 * per_iter / elapsed
}

/// Flops per second of [`spin_fused`] (the better of two runs, and their spread) and of
/// [`spin`] on every thread of `pool`.
fn arithmetic(pool: &rayon::ThreadPool) -> (f64, f64, f64) {
    // Values stay finite and normal: x → a / (1 − m) = 1.
    let (m, a) = (black_box(0.999_9f32), black_box(1e-4f32));
    let fused = (FUSED_CHAINS * 8 * 2) as f64;
    let first = probe(pool, fused, |iters| spin_fused(u64::from(iters), m, a));
    let second = probe(pool, fused, |iters| spin_fused(u64::from(iters), m, a));
    let (lo, hi) = (first.min(second), first.max(second));
    (
        hi,
        hi / lo - 1.0,
        probe(pool, FLOPS_PER_ITER, |iters| spin(u64::from(iters), m, a)),
    )
}

/// Standard normals per second of [`draw`] on every thread of `pool`.
fn normals(pool: &rayon::ThreadPool) -> f64 {
    const PER_BLOCK: f64 = (4 * crate::engine::cpu::lanes::LANES) as f64;
    probe(pool, PER_BLOCK, draw)
}

/// Read bytes per second summing a [`BANDWIDTH_BYTES`] buffer on every thread of `pool` (best of
/// three passes, after one that faults the pages in).
fn bandwidth(pool: &rayon::ThreadPool) -> f64 {
    let n = BANDWIDTH_BYTES / 4;
    pool.install(|| {
        // Written (not just allocated) so that every page is real memory, not the zero page.
        let mut data = vec![0.0f32; n];
        data.par_chunks_mut(1 << 16)
            .enumerate()
            .for_each(|(i, c)| c.fill(1.0 + (i % 7) as f32));
        let piece = n.div_ceil(pool.current_num_threads() * 8);
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            let s: f32 = data.par_chunks(piece).map(sum).sum();
            best = best.min(t.elapsed().as_secs_f64());
            black_box(s);
        }
        BANDWIDTH_BYTES as f64 / best
    })
}

/// The peaks on `threads` threads, measured once per process and thread count.
pub fn measure(threads: usize) -> Result<Peak> {
    static CACHE: Mutex<Vec<Peak>> = Mutex::new(Vec::new());
    let threads = threads.max(1);
    if let Some(p) = CACHE
        .lock()
        .expect("peak cache")
        .iter()
        .find(|p| p.threads == threads)
    {
        return Ok(p.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let (fused, spread, unfused) = arithmetic(&pool);
    let gflops = fused / 1e9;
    let bytes_per_s = bandwidth(&pool);
    let normals_per_s = normals(&pool);
    let peak = Peak {
        threads,
        gflops,
        bytes_per_s: Some(bytes_per_s),
        normals_per_s: Some(normals_per_s),
        source: format!(
            "measured: f32 fused multiply-add (unfused mul+add: {:.1} GFLOP/s), read and \
             Philox+Box–Muller microbenchmarks, {threads} thread{}",
            unfused / 1e9,
            if threads == 1 { "" } else { "s" }
        ),
        spread: Some(spread),
    };
    CACHE.lock().expect("peak cache").push(peak.clone());
    Ok(peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_compute_what_they_claim() {
        // spin converges to a / (1 − m) on every lane; sum adds every element.
        let s = spin(20_000, 0.5, 0.5);
        assert!((s - (CHAINS * 8) as f32).abs() < 1e-3, "{s}");
        let s = spin_fused(20_000, 0.5, 0.5);
        assert!((s - (FUSED_CHAINS * 8) as f32).abs() < 1e-3, "{s}");
        let data: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(sum(&data), 499_500.0);
    }
}
