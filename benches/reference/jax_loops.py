#!/usr/bin/env python3
"""The JAX loops a researcher would write for the `regimes bench` workloads: jit + lax.scan, f32,
threefry noise (JAX's default), the same models and Euler-Maruyama steps as numpy_loops.py.

Reads the models that `regimes bench --export-model DIR` writes and prints a JSON list of records
with the same keys as numpy_loops.py (`backend` = "jax"). The timed loop is the second call of the
jitted scan (the first compiles; its time is `compile_seconds`), ended by block_until_ready.

Usage: jax_loops.py DIR [--workload gmm,dense,empirical] [--particles N]
Needs `pip install "jax[cpu]"` (compare.py --peer jax installs it when missing).
"""

import os
import sys
import time

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_loops import cli, expm  # noqa: E402


def scan_loop(step, x0, per_step, key):
    """x_{j+1} = step(x_j, per_step[j], noise_j) over all j, jitted; returns (x, seconds, compile)."""
    steps = jax.tree_util.tree_leaves(per_step)[0].shape[0]
    keys = jax.random.split(key, steps)

    @jax.jit
    def run(x, per_step, keys):
        def body(x, inputs):
            coeffs, k = inputs
            z = jax.random.normal(k, x.shape, dtype=jnp.float32)
            return step(x, coeffs, z), None

        x, _ = jax.lax.scan(body, x, (per_step, keys))
        return x

    started = time.perf_counter()
    run(x0, per_step, keys).block_until_ready()
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    x = run(x0, per_step, keys).block_until_ready()
    return np.asarray(x), time.perf_counter() - started, compile_seconds


def gmm(meta, ar, n, key):
    d, steps, t_max, s2 = meta["dim"], meta["steps"], meta["t_max"], meta["sigma"] ** 2
    dt = t_max / steps
    m = jnp.asarray(ar["m"], jnp.float32)
    t = t_max - dt * np.arange(steps)
    e = np.exp(-t)
    gam = e * e * s2 + 1 - e * e
    per_step = (jnp.asarray(e / gam, jnp.float32), jnp.asarray(1 / gam, jnp.float32))
    noise = np.float32(np.sqrt(2 * dt))
    k0, k1, key = jax.random.split(key, 3)
    e_t = np.exp(-t_max)
    g_t = e_t * e_t * s2 + 1 - e_t * e_t
    sign = jnp.where(jax.random.uniform(k0, (n,)) < 0.5, 1.0, -1.0)
    x0 = (jnp.outer(sign, e_t * m) + np.sqrt(g_t) * jax.random.normal(k1, (n, d))).astype(jnp.float32)

    def step(x, c, z):
        scale, inv = c
        w = scale * m
        h = jnp.tanh(x @ w)
        score = jnp.outer(h, w) - x * inv
        return x + dt * (x + 2.0 * score) + noise * z

    return scan_loop(step, x0, per_step, key)


def dense(meta, ar, n, key):
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
        ginv.append(gi)
        gm.append(gi @ (e @ m))
    per_step = (jnp.asarray(np.array(ginv), jnp.float32), jnp.asarray(np.array(gm), jnp.float32))
    at = jnp.asarray(a.T, jnp.float32)
    noise = np.float32(np.sqrt(2 * dt))
    e, g = gamma(t_max)
    chol = np.linalg.cholesky(g)
    k0, k1, key = jax.random.split(key, 3)
    sign = jnp.where(jax.random.uniform(k0, (n,)) < 0.5, 1.0, -1.0)
    x0 = (jnp.outer(sign, e @ m) + jax.random.normal(k1, (n, d)) @ chol.T).astype(jnp.float32)

    def step(x, c, z):
        gi, w = c
        h = jnp.tanh(x @ w)
        score = jnp.outer(h, w) - x @ gi
        return x + dt * (x @ at + 2.0 * score) + noise * z

    return scan_loop(step, x0, per_step, key)


def empirical(meta, ar, n, key):
    d, steps, t_max = meta["dim"], meta["steps"], meta["t_max"]
    dt = t_max / steps
    train = jnp.asarray(ar["train"], jnp.float32)
    sq = (train * train).sum(axis=1)
    t = t_max - dt * np.arange(steps)
    e = np.exp(-t)
    s = 1 - e * e
    per_step = tuple(jnp.asarray(v, jnp.float32) for v in (e / s, 0.5 * e * e / s, e, 1 / s))
    noise = np.float32(np.sqrt(2 * dt))
    k0, k1, key = jax.random.split(key, 3)
    e_t = np.exp(-t_max)
    pick = jax.random.randint(k0, (n,), 0, train.shape[0])
    x0 = (e_t * train[pick] + np.sqrt(1 - e_t * e_t) * jax.random.normal(k1, (n, d))).astype(jnp.float32)

    def step(x, c, z):
        a, b, e, inv_s = c
        r = jax.nn.softmax((x @ train.T) * a - b * sq, axis=1)
        score = (e * (r @ train) - x) * inv_s
        return x + dt * (x + 2.0 * score) + noise * z

    return scan_loop(step, x0, per_step, key)


LOOPS = {"gmm": gmm, "dense": dense, "empirical": empirical, "coupled": dense}


def main():
    def call(loop, meta, ar, n):
        x, run_seconds, compile_seconds = loop(meta, ar, n, jax.random.PRNGKey(meta["seed"]))
        return x, run_seconds, {"compile_seconds": compile_seconds}

    cli("jax", jax.__version__, LOOPS, call)


if __name__ == "__main__":
    main()
