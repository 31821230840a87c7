"""φ(t) against F(s(t)) from Python: the cloning experiment of the base paper, with an
anisotropic U built in NumPy and the optimal Q of the library.

    pip install "./python[plot]"    # once, from the repository root (the extension and matplotlib)
    python examples/python/phi.py   # prints the table; writes phi.png when matplotlib is there

The measured φ(t) (with its standard error) should follow the theory F(s(t)), and the measured
t_S (where φ crosses F(1) = 0.7752) the theoretical one.
"""

import sys

import numpy as np

import regimes

d = 16
u = np.diag(np.geomspace(0.2, 5.0, d))  # stationary precision, any SPD matrix will do
res = regimes.speciation(
    u=u,
    q="optimal",
    dim=d,
    pairs=20_000,
    branch_times=np.linspace(0.25, 3.0, 12),
    backend="auto",
    quiet=True,
)
print(f"engine: {res.backend}")
print(f"t_S measured {res.t_s_measured:.3f} ± {res.t_s_stderr:.3f}, theory {res.theory.t_s:.3f}")
print("     t      φ(t)    ±      F(s(t))")
for t, phi, se, f in zip(res.t, res.phi, res.phi_stderr, res.phi_theory):
    print(f"{t:6.3f}  {phi:.4f}  {se:.4f}  {f:.4f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit('matplotlib is not installed: no figure (pip install "./python[plot]" or pip install matplotlib)')

curve = res.theory.s_curve  # F(s(t)) on a fine grid
fig, ax = plt.subplots(figsize=(6.4, 4.0))
ax.plot(curve.t, curve.phi_theory, color="0.3", label="theory F(s(t))")
ax.errorbar(res.t, res.phi, yerr=res.phi_stderr, fmt="o", ms=4, capsize=2,
            label=f"measured φ(t), {res.config.pairs} pairs")
ax.axhline(res.f_at_speciation, ls=":", color="0.6")
ax.axvline(res.theory.t_s, ls="--", color="0.6", label=f"theory t_S = {res.theory.t_s:.2f}")
ax.errorbar([res.t_s_measured], [res.f_at_speciation], xerr=[res.t_s_stderr], fmt="s",
            color="C3", label=f"measured t_S = {res.t_s_measured:.2f} ± {res.t_s_stderr:.2f}")
ax.set_xlim(0, float(max(res.t)) * 1.05)
ax.set_xlabel("branch time t (forward time)")
ax.set_ylabel("φ(t): both clones in the same class")
ax.set_title(f"speciation, d = {d}, U = geomspace(0.2, 5), optimal Q")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig("phi.png", dpi=120)
print("wrote phi.png")
