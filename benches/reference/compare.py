#!/usr/bin/env python3
"""regimes beside the loops a researcher would write, on the same workloads, sizes and machine.

Runs `regimes bench --json` (the CPU engine), exports the same models with
`regimes bench --export-model`, runs the peers on them with the same particle counts — plain NumPy
(numpy_loops.py) and JAX (jax_loops.py: jit + lax.scan, f32, threefry) — and prints a table of the
rates and regimes' ratio to each. Installs NumPy and JAX (CPU) with pip if they are missing.

    benches/reference/compare.py                      # d = 100, N = 1000, all three workloads
    benches/reference/compare.py --peer jax --workload empirical
    benches/reference/compare.py --markdown           # rows for docs/performance.md
    REGIMES=path/to/regimes benches/reference/compare.py --workload dense --particles 4096

The regimes binary is $REGIMES, or target/release/regimes (build it with `cargo build --release`).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


PEERS = {"numpy": ("numpy_loops.py", "numpy", "numpy"), "jax": ("jax_loops.py", "jax", "jax[cpu]")}


def ensure(module, package):
    try:
        __import__(module)
    except ImportError:
        print(f"installing {package}...", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", package])


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="gmm,dense,empirical", help="comma list")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--particles", type=int, help="default: regimes bench's per-workload default")
    p.add_argument("--threads", type=int, help="regimes CPU threads (default: all cores)")
    p.add_argument("--peer", default="numpy,jax", help="comma list of numpy, jax")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown rows")
    p.add_argument("--json", action="store_true", help="print both sets of records as JSON")
    args = p.parse_args()

    regimes = os.environ.get("REGIMES", os.path.join(ROOT, "target", "release", "regimes"))
    if not os.path.exists(regimes):
        sys.exit(f"no regimes binary at {regimes}: run `cargo build --release` or set REGIMES")
    peers = args.peer.split(",")
    for peer in peers:
        if peer not in PEERS:
            sys.exit(f"--peer: unknown peer '{peer}' (numpy, jax)")
        ensure(PEERS[peer][1], PEERS[peer][2])

    common = ["--workload", args.workload, "--dim", str(args.dim), "--steps", str(args.steps),
              "--n-train", str(args.n_train), "--seed", str(args.seed)]
    if args.particles:
        common += ["--particles", str(args.particles)]
    bench = [regimes, "bench", "--backend", "cpu", "--json", *common]
    if args.threads:
        bench += ["--threads", str(args.threads)]
    print("$ " + " ".join(bench[1:]), file=sys.stderr)
    ours = json.loads(subprocess.run(bench, check=True, stdout=subprocess.PIPE).stdout)

    theirs = {peer: [] for peer in peers}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([regimes, "bench", "--export-model", tmp, *common], check=True,
                       stdout=subprocess.DEVNULL)
        for r in ours:
            for peer in peers:
                script = PEERS[peer][0]
                cmd = [sys.executable, os.path.join(HERE, script), tmp,
                       "--workload", r["workload"], "--particles", str(r["particles"])]
                print("$ {} --workload {} --particles {}".format(script, r["workload"], r["particles"]),
                      file=sys.stderr)
                theirs[peer] += json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)

    if args.json:
        print(json.dumps({"regimes": ours, **theirs}, indent=2))
        return
    versions = ", ".join("{} {}".format(peer, theirs[peer][0].get(peer + "_version", "?"))
                         for peer in peers if theirs[peer])
    threads = ours[0]["threads"] if ours else "?"
    print(f"{cpu_name()}, {os.cpu_count()} cores; regimes CPU engine on {threads} threads, "
          f"{versions}; d = {args.dim}, {args.steps} steps, N = {args.n_train}")
    rows = []
    for i, r in enumerate(ours):
        rates = [theirs[peer][i]["particle_steps_per_s"] for peer in peers]
        rows.append((r["workload"], r["particles"], r["particle_steps_per_s"], rates,
                     r["gflops"], 100 * (r["peak_fraction"] or 0),
                     "{} {:.0f} %".format(r["bound"], 100 * r["bound_fraction"])
                     if r.get("bound") else "—"))
    if args.markdown:
        head = "".join(f" {p} (particle-steps/s) | regimes / {p} |" for p in peers)
        print("| workload | particles | regimes (particle-steps/s) |" + head
              + " regimes GFLOP/s | % of FLOP peak | bound (% of its peak) |")
        print("| --- | ---: | ---: |" + " ---: | ---: |" * len(peers) + " ---: | ---: | --- |")
        for w, n, a, rates, g, pct, bound in rows:
            cells = "".join(f" {b:.3g} | {a / b:.1f}× |" for b in rates)
            print(f"| {w} | {n} | {a:.3g} |{cells} {g:.1f} | {pct:.0f} % | {bound} |")
    else:
        head = "".join(f" {p + '/s':>11} {'ratio':>7}" for p in peers)
        print(f"{'workload':<10} {'particles':>9} {'regimes/s':>11}{head} {'GFLOP/s':>8} {'% peak':>7}  bound")
        for w, n, a, rates, g, pct, bound in rows:
            cells = "".join(f" {b:>11.3g} {a / b:>6.1f}×" for b in rates)
            print(f"{w:<10} {n:>9} {a:>11.3g}{cells} {g:>8.1f} {pct:>6.0f}%  {bound}")


if __name__ == "__main__":
    main()
