#!/usr/bin/env python3
"""regimes beside plain NumPy loops, on the same workloads, sizes and machine.

Runs `regimes bench --json` (the CPU engine), exports the same models with
`regimes bench --export-model`, runs numpy_loops.py on them with the same particle counts, and
prints a table of both rates and their ratio. Installs NumPy with pip if it is missing.

    benches/reference/compare.py                      # d = 100, N = 1000, all three workloads
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


def ensure_numpy():
    try:
        import numpy  # noqa: F401
    except ImportError:
        print("installing numpy...", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "numpy"])


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
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown rows")
    p.add_argument("--json", action="store_true", help="print both sets of records as JSON")
    args = p.parse_args()

    regimes = os.environ.get("REGIMES", os.path.join(ROOT, "target", "release", "regimes"))
    if not os.path.exists(regimes):
        sys.exit(f"no regimes binary at {regimes}: run `cargo build --release` or set REGIMES")
    ensure_numpy()

    common = ["--workload", args.workload, "--dim", str(args.dim), "--steps", str(args.steps),
              "--n-train", str(args.n_train), "--seed", str(args.seed)]
    if args.particles:
        common += ["--particles", str(args.particles)]
    bench = [regimes, "bench", "--backend", "cpu", "--json", *common]
    if args.threads:
        bench += ["--threads", str(args.threads)]
    print("$ " + " ".join(bench[1:]), file=sys.stderr)
    ours = json.loads(subprocess.run(bench, check=True, stdout=subprocess.PIPE).stdout)

    theirs = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([regimes, "bench", "--export-model", tmp, *common], check=True,
                       stdout=subprocess.DEVNULL)
        for r in ours:
            cmd = [sys.executable, os.path.join(HERE, "numpy_loops.py"), tmp,
                   "--workload", r["workload"], "--particles", str(r["particles"])]
            print("$ numpy_loops.py --workload {} --particles {}".format(r["workload"], r["particles"]),
                  file=sys.stderr)
            theirs += json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)

    if args.json:
        print(json.dumps({"regimes": ours, "numpy": theirs}, indent=2))
        return
    numpy_version = theirs[0]["numpy_version"] if theirs else "?"
    threads = ours[0]["threads"] if ours else "?"
    print(f"{cpu_name()}, {os.cpu_count()} cores; regimes CPU engine on {threads} threads, "
          f"NumPy {numpy_version}; d = {args.dim}, {args.steps} steps, N = {args.n_train}")
    rows = []
    for r, n in zip(ours, theirs):
        rows.append((r["workload"], r["particles"], r["particle_steps_per_s"],
                     n["particle_steps_per_s"], r["particle_steps_per_s"] / n["particle_steps_per_s"],
                     r["gflops"], 100 * (r["peak_fraction"] or 0),
                     "{} {:.0f} %".format(r["bound"], 100 * r["bound_fraction"])
                     if r.get("bound") else "—"))
    if args.markdown:
        print("| workload | particles | regimes (particle-steps/s) | NumPy (particle-steps/s) "
              "| regimes / NumPy | regimes GFLOP/s | % of FLOP peak | bound (% of its peak) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for w, n, a, b, ratio, g, pct, bound in rows:
            print(f"| {w} | {n} | {a:.3g} | {b:.3g} | {ratio:.1f}× | {g:.1f} | {pct:.0f} % | {bound} |")
    else:
        print(f"{'workload':<10} {'particles':>9} {'regimes/s':>11} {'numpy/s':>11} {'ratio':>7} "
              f"{'GFLOP/s':>8} {'% peak':>7}  bound")
        for w, n, a, b, ratio, g, pct, bound in rows:
            print(f"{w:<10} {n:>9} {a:>11.3g} {b:>11.3g} {ratio:>6.1f}× {g:>8.1f} {pct:>6.0f}%  {bound}")


if __name__ == "__main__":
    main()
