#!/usr/bin/env python3
"""The plain NumPy loops a researcher would write for the `regimes bench` workloads, in f32.

Reads the models that `regimes bench --export-model DIR` writes (DIR/<workload>/{u,q,a,m}.npy,
train.npy for the empirical workload, meta.json with d, particles, steps, seed, T, sigma), runs
the reverse SDE with Euler-Maruyama from t = T down to 0,

    x <- x + dt * (A x + 2 score_t(x)) + sqrt(2 dt) z,      z ~ N(0, I)

and prints a JSON list of records with the same `workload` keys as `regimes bench --json`:
particle_steps_per_s, run_seconds (the timed loop), setup_seconds (per-step matrices, start).

The score of the noised target p_t (E_t = exp(-A t), Sigma_t = U^-1 - E_t U^-1 E_t^T):
  gmm, dense  two classes +-m with C = sigma^2 I: Gamma_t = E_t C E_t^T + Sigma_t, m_t = E_t m,
              score = -Gamma_t^-1 x + Gamma_t^-1 m_t tanh(m_t^T Gamma_t^-1 x)
              (U = I: Gamma_t is a scalar; dense: Gamma_t^-1 per step, computed in float64
              before the timed loop and cast to f32, the timed loop does the per-step matmuls)
  empirical   N training points a_mu, U = I: softmax over logits (e x.a_mu - e^2 |a_mu|^2 / 2) / s,
              s = 1 - e^2, e = exp(-t); score = (e sum_mu r_mu a_mu - x) / s

Usage: numpy_loops.py DIR [--workload gmm,dense,empirical] [--particles N]
"""

import argparse
import json
import os
import sys
import time

import numpy as np


def expm(m):
    """exp(M) by scaling and squaring with a Taylor series (float64; no SciPy needed)."""
    norm = np.linalg.norm(m, 1)
    s = max(0, int(np.ceil(np.log2(norm / 0.5)))) if norm > 0 else 0
    x = m / 2.0**s
    e = np.eye(m.shape[0])
    term = np.eye(m.shape[0])
    for k in range(1, 24):
        term = term @ x / k
        e = e + term
    for _ in range(s):
        e = e @ e
    return e


def load(dirname, workload):
    d = os.path.join(dirname, workload)
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    arrays = {k: np.load(os.path.join(d, k + ".npy")) for k in ("u", "q", "a", "m")}
    train = os.path.join(d, "train.npy")
    if os.path.exists(train):
        arrays["train"] = np.load(train)
    return meta, arrays


def gmm(meta, ar, n, rng):
    """U = I, Q = 0: Gamma_t is a scalar, the score is a tanh along m."""
    d, steps, t_max, s2 = meta["dim"], meta["steps"], meta["t_max"], meta["sigma"] ** 2
    dt = t_max / steps
    m = ar["m"].astype(np.float32)
    noise = np.sqrt(2 * dt)
    # Start from the exact p_T: +-m_T + sqrt(Gamma_T) z.
    e = np.exp(-t_max)
    gam = e * e * s2 + 1 - e * e
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    x = (np.outer(sign, e * m) + np.sqrt(gam) * rng.standard_normal((n, d), dtype=np.float32))
    x = x.astype(np.float32)

    start = time.perf_counter()
    for j in range(steps):
        t = t_max - j * dt
        e = np.exp(-t)
        gam = e * e * s2 + 1 - e * e
        w = (e / gam) * m  # Gamma^-1 m_t
        h = np.tanh(x @ w)
        score = np.outer(h, w) - x / gam
        x = x + dt * (x + 2.0 * score) + noise * rng.standard_normal((n, d), dtype=np.float32)
    return x, time.perf_counter() - start


def dense(meta, ar, n, rng):
    """Dense A = (I + Q)U: Gamma_t^-1 and Gamma_t^-1 m_t per step, precomputed in float64."""
    d, steps, t_max, s2 = meta["dim"], meta["steps"], meta["t_max"], meta["sigma"] ** 2
    dt = t_max / steps
    a, u, m = ar["a"], ar["u"], ar["m"]
    u_inv = np.linalg.inv(u)

    def gamma(t):
        e = expm(-a * t)
        return e, u_inv + e @ (s2 * np.eye(d) - u_inv) @ e.T

    ginv, gm = [], []
    for j in range(steps):
        e, g = gamma(t_max - j * dt)
        gi = np.linalg.inv(g)
        ginv.append(gi.astype(np.float32))
        gm.append((gi @ (e @ m)).astype(np.float32))
    at = a.T.astype(np.float32)
    noise = np.sqrt(2 * dt)
    e, g = gamma(t_max)
    chol = np.linalg.cholesky(g)
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    z = rng.standard_normal((n, d))
    x = (np.outer(sign, e @ m) + z @ chol.T).astype(np.float32)

    start = time.perf_counter()
    for j in range(steps):
        w = gm[j]
        h = np.tanh(x @ w)
        score = np.outer(h, w) - x @ ginv[j]  # Gamma^-1 is symmetric
        x = x + dt * (x @ at + 2.0 * score) + noise * rng.standard_normal((n, d), dtype=np.float32)
    return x, time.perf_counter() - start


def empirical(meta, ar, n, rng):
    """U = I, Q = 0, N training points: a softmax over the points per step."""
    d, steps, t_max = meta["dim"], meta["steps"], meta["t_max"]
    dt = t_max / steps
    train = ar["train"].astype(np.float32)
    sq = (train * train).sum(axis=1)
    noise = np.sqrt(2 * dt)
    e = np.exp(-t_max)
    s = 1 - e * e
    pick = rng.integers(0, train.shape[0], n)
    x = (e * train[pick] + np.sqrt(s) * rng.standard_normal((n, d), dtype=np.float32))
    x = x.astype(np.float32)

    start = time.perf_counter()
    for j in range(steps):
        t = t_max - j * dt
        e = np.exp(-t)
        s = 1 - e * e
        logits = (x @ train.T) * (e / s) - (0.5 * e * e / s) * sq
        logits -= logits.max(axis=1, keepdims=True)
        r = np.exp(logits)
        r /= r.sum(axis=1, keepdims=True)
        score = (e * (r @ train) - x) / s
        x = x + dt * (x + 2.0 * score) + noise * rng.standard_normal((n, d), dtype=np.float32)
    return x, time.perf_counter() - start


# The coupled workload is a dense A = K ⊗ I with Q = 0: the dense loop, on its exported model.
LOOPS = {"gmm": gmm, "dense": dense, "empirical": empirical, "coupled": dense}


def cli(backend, version, loops, call):
    """The command line both reference scripts share: for each workload, `call(loop, meta,
    arrays, n)` returns (x, run_seconds, extra fields); prints the JSON records."""
    p = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="directory written by `regimes bench --export-model DIR`")
    p.add_argument("--workload", default="gmm,dense,empirical", help="comma list")
    p.add_argument("--particles", type=int, help="override meta.json's particle count")
    args = p.parse_args()
    records = []
    for workload in args.workload.split(","):
        if workload not in loops:
            sys.exit(f"--workload: unknown workload '{workload}' (gmm, dense, empirical, coupled)")
        meta, ar = load(args.dir, workload)
        n = args.particles or meta["particles"]
        started = time.perf_counter()
        x, run_seconds, extra = call(loops[workload], meta, ar, n)
        total = time.perf_counter() - started
        m = ar["m"]
        records.append({
            "workload": workload,
            "backend": backend,
            f"{backend}_version": version,
            "dim": meta["dim"],
            "particles": n,
            "steps": meta["steps"],
            "n_train": meta["n_train"],
            "particle_steps_per_s": n * meta["steps"] / run_seconds,
            "run_seconds": run_seconds,
            **extra,
            "setup_seconds": total - run_seconds - extra.get("compile_seconds", 0.0),
            # A check that the loop samples the target: |x.m| / |m|^2 is near 1 at t = 0.
            "mean_abs_projection": float(np.abs(x.astype(np.float64) @ m).mean() / (m @ m)),
        })
        print(f"{backend} {workload}: {records[-1]['particle_steps_per_s']:.4g} particle-steps/s",
              file=sys.stderr)
    print(json.dumps(records, indent=2))


def main():
    def call(loop, meta, ar, n):
        x, run_seconds = loop(meta, ar, n, np.random.default_rng(meta["seed"]))
        return x, run_seconds, {}

    cli("numpy", np.__version__, LOOPS, call)


if __name__ == "__main__":
    main()
