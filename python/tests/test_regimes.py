"""The Python package against the CLI: the same summaries bit for bit, arrays equal to files, the
CLI's error messages as ConfigError, Ctrl-C, progress and stop requests per run, and a GPU
(lavapipe) run against the CPU.

Runs the release CLI binary (REGIMES_BIN, default target/release/regimes); scripts/test builds
both first.
"""

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import regimes

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("REGIMES_BIN", ROOT / "target" / "release" / "regimes"))
# Keys measured again by every run: timings, the GPU variant chooser's probe times, and the
# pruning diagnostics (tiles skipped per segment; segments are sized from the measured rate, so
# the counts vary from run to run under load, the results do not).
TIMINGS = {"wall_seconds", "shader_compile_seconds", "seconds", "gpu_variant", "pruned_tiles"}
# Small studies: each runs in well under a second on 2 cores.
SMALL = dict(preset="quick", backend="cpu", threads=2)


def words(config):
    """The CLI flags of keyword arguments (the same rule as the package's)."""
    out = []
    for k, v in config.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool) and k in ("force", "quiet"):
            out += [flag] if v else []
        elif isinstance(v, bool):
            out.append(f"{flag}={str(v).lower()}")
        elif isinstance(v, (list, tuple)):
            out.append(f"{flag}={','.join(map(repr, v))}")
        else:
            out.append(f"{flag}={v}")
    return out


def cli(command, config, *extra, check=True):
    p = subprocess.run(
        [str(BIN), command, *words(config), *extra],
        capture_output=True,
        text=True,
    )
    if check:
        assert p.returncode == 0, p.stderr
    return p


def cli_summary(command, config):
    return json.loads(cli(command, config, "--json").stdout)


def untimed(x):
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list):
        return [untimed(v) for v in x]
    return x


def cli_message(command, config):
    """The CLI's error message, as the package states it (no `error: ` prefix, no pointer to
    --help)."""
    p = cli(command, config, check=False)
    assert p.returncode != 0
    text = p.stderr.strip()
    text = text.removeprefix("error: ")
    return text.removesuffix("For more information, try '--help'.").strip()


@pytest.mark.parametrize(
    "command, config",
    [
        ("theory", dict(preset="quick")),
        ("run", dict(SMALL, record_times=[5.0, 1.0, 0.0])),
        ("speciation", dict(SMALL, branch_times=[0.5, 1.0, 2.0], pairs=3000)),
        ("collapse", dict(SMALL, particles=2000, pairs=200)),
    ],
)
def test_results_equal_the_cli_summary(command, config):
    res = getattr(regimes, command)(quiet=True, **config)
    want = cli_summary(command, config)
    assert untimed(res.to_dict()) == untimed(want)
    assert res.command == command and res.fraction_done == 1.0
    if command == "speciation":
        assert res.phi.tolist() == [r["phi"] for r in want["phi"]]
        assert sorted(res.t.tolist()) == [0.5, 1.0, 2.0]
        assert res.phi_stderr.tolist() == [r["stderr"] for r in want["phi"]]
        assert res.t_s_measured == want["t_s_measured"]
        assert res.t_s_stderr == want["t_s_measured_stderr"]
        assert res.theory.t_s == want["theory"]["t_s"]
        assert res.table().columns == list(want["phi"][0])
    if command == "run":
        counts = [r["count"] for r in want["record"]]
        assert res.record.count.tolist() == counts and res.record.count.dtype == np.int64


def test_out_writes_what_the_cli_writes(tmp_path):
    config = dict(SMALL, particles=4096, save_samples=True)
    res = regimes.run(out=tmp_path / "py", quiet=True, **config)
    cli("run", config, f"--out={tmp_path / 'cli'}", "--quiet")
    names = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert sorted(p.name for p in (tmp_path / "py").iterdir()) == names
    assert res.files and set(res.files) <= set(names)
    for name in names:
        if name.endswith((".csv", ".npy", ".svg")):
            a, b = (tmp_path / d / name for d in ("py", "cli"))
            assert a.read_bytes() == b.read_bytes(), name
    cli_samples = np.load(tmp_path / "cli" / "samples.npy")
    assert res.samples.shape == (4096, 8)
    assert np.array_equal(res.samples, cli_samples)
    # Without out=, the samples still come back, and nothing is left behind.
    again = regimes.run(quiet=True, **config)
    assert again.out is None and np.array_equal(again.samples, cli_samples)


def spd(d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    return a @ a.T / d + np.eye(d)


def test_arrays_in_equal_files_in(tmp_path):
    d = 6
    rng = np.random.default_rng(3)
    a = rng.normal(size=(d, d))
    arrays = dict(u=spd(d, 1), q=a - a.T, mean=rng.normal(size=d), within_cov=spd(d, 2))
    mixture = np.column_stack([[0.3, 0.7], rng.normal(size=(2, d))])
    train = rng.normal(size=(64, d))
    files = {}
    for name, x in dict(arrays, mixture=mixture, train=train).items():
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], x)
    base = dict(SMALL, dim=d, pairs=1000, branch_times=[0.5, 1.0])
    from_arrays = regimes.speciation(quiet=True, mixture=mixture, **base, **arrays)
    from_files = regimes.speciation(
        quiet=True,
        mixture_file=files["mixture"],
        **base,
        **{k: f"file:{files[k]}" for k in arrays},
    )
    # The configs differ only in the paths they name.
    a, b = untimed(from_arrays.to_dict()), untimed(from_files.to_dict())
    for k in ("u", "q", "mean", "within-cov", "mixture-file"):
        assert a["config"].pop(k) != b["config"].pop(k)
    assert a == b
    small = dict(SMALL, dim=d, particles=1000, pairs=100)
    c_arrays = regimes.collapse(quiet=True, train=train, **small)
    c_files = regimes.collapse(quiet=True, train_file=str(files["train"]), **small)
    a, b = untimed(c_arrays.to_dict()), untimed(c_files.to_dict())
    assert a["config"].pop("train-file") != b["config"].pop("train-file")
    assert a == b and c_arrays.n_train == 64


# Refused after the keys are read (validation, preflight, presets, the model): the CLI's
# messages word for word.
BAD = [
    ("speciation", dict(dim=0)),
    ("speciation", dict(pairs=0)),
    ("speciation", dict(entropy_times=[1.0])),
    ("speciation", dict(preset="nope")),
    ("collapse", dict(n_train=1)),
    ("run", dict(q="pair:0:99:1")),
    ("theory", dict(t_max=-1.0)),
    ("bench", dict(dim=0)),
]


@pytest.mark.parametrize("command, config", BAD)
def test_config_errors_are_the_cli_messages(command, config):
    with pytest.raises(regimes.ConfigError) as e:
        getattr(regimes, command)(quiet=True, **config)
    assert str(e.value) == cli_message(command, dict(quiet=True, **config))


# Refused as the keys are read: the CLI's flag parser words these its own way; the package
# names the key and what is wrong.
BAD_VALUES = [
    (dict(u="linspace:1"), ["'u'", "linspace"]),
    (dict(dimm=3), ["unknown key 'dimm'", "did you mean 'dim'"]),
    (dict(particles=-1), ["'particles'", "-1"]),
    (dict(branch_times=[0.5, float("nan")]), ["branch_times", "not a finite number"]),
    (dict(backend="gl"), ["'backend'", "gl"]),
    (dict(figure_size="wide"), ["figure_size"]),
    (dict(progress=3), ["progress=3"]),
]


@pytest.mark.parametrize("config, words", BAD_VALUES)
def test_bad_values_name_their_key(config, words):
    with pytest.raises(regimes.ConfigError) as e:
        regimes.speciation(quiet=True, **config)
    for w in words:
        assert w in str(e.value)


def test_keyword_values_read_as_the_flags_do():
    """A count given as a float (1e4), a figure size as text: the config the flags give."""
    res = regimes.speciation(pairs=2e3, t_max=10, figure_size="800x500", quiet=True, **SMALL)
    assert res.config["pairs"] == 2000 and res.config["t-max"] == 10.0
    assert res.config["figure-size"] == [800, 500]


def test_a_matrix_of_the_wrong_shape_is_a_config_error(tmp_path):
    np.save(tmp_path / "q.npy", np.ones((5, 5)))
    with pytest.raises(regimes.ConfigError, match="expected 8×8"):
        regimes.speciation(quiet=True, q=np.ones((5, 5)), **SMALL)
    with pytest.raises(regimes.ConfigError, match="expected 8×8"):
        regimes.speciation(quiet=True, q=f"file:{tmp_path / 'q.npy'}", **SMALL)
    assert regimes.ConfigError.__module__ == "regimes"
    assert issubclass(regimes.RunError, Exception)


# The child installs Python's SIGINT handler itself: one started from a background job (CI run
# with `&`) inherits SIGINT ignored, and Python then leaves it ignored.
INTERRUPTED = """
import signal, sys, time, regimes
signal.signal(signal.SIGINT, signal.default_int_handler)
print("ready", flush=True)
try:
    regimes.speciation(preset="biroli", backend="cpu", pairs=10_000_000, quiet=True,
                       out=sys.argv[1])
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", time.time(), flush=True)
res = regimes.speciation(preset="quick", backend="cpu", pairs=500, quiet=True)
print("then", res.fraction_done, flush=True)
"""


def test_keyboard_interrupt_stops_a_run_promptly(tmp_path):
    p = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.5)  # well inside the run (minutes long)
    sent = time.time()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    lines = out.splitlines()
    assert lines[0].startswith("interrupted"), out
    # The engine's segments aim at 1 s of work (measure::SEGMENT_SECONDS), the stop lands at
    # the next boundary, then the partial files are written: 0.4-1.0 s measured on 2 loaded cores.
    assert float(lines[0].split()[1]) - sent < 2.0
    # The stop was this run's: the next one completes.
    assert lines[1] == "then 1.0"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stopped_early"].startswith("interrupted")
    assert summary["fraction_done"] < 1.0


def has_adapter():
    p = subprocess.run([str(BIN), "devices", "--json"], capture_output=True, text=True)
    return p.returncode == 0 and json.loads(p.stdout) != []


def test_gpu_run_matches_the_cpu():
    if not has_adapter():
        if os.environ.get("CI"):
            pytest.fail("CI is set but no GPU adapter exists (install lavapipe)")
        pytest.skip("no GPU adapter (lavapipe: apt install mesa-vulkan-drivers)")
    config = dict(preset="quick", pairs=4000, branch_times=[0.5, 1.0, 1.5])
    gpu = regimes.speciation(backend="gpu", quiet=True, **config)
    cpu = regimes.speciation(backend="cpu", quiet=True, **config)
    assert gpu.backend.startswith("gpu:") and cpu.backend.startswith("cpu")
    # Labels agree where the top two logits differ by 1e-3: at most 1 % of the pairs move.
    assert np.all(np.abs(gpu.phi - cpu.phi) <= 0.01)
    # The same run on the GPU from Python and from the CLI: bit for bit.
    want = cli_summary("speciation", dict(config, backend="gpu"))
    assert untimed(gpu.to_dict()) == untimed(want)


def test_stubs_and_array_keys_follow_the_key_declaration():
    """StudyOptions names every key of config::keys::KEYS (and the CLI's summary has the same
    keys); every key that reads a file takes an array in the package and in the stubs."""
    keys = {k.replace("-", "_") for k, _, _ in regimes._KEYS}
    summary = cli_summary("theory", dict(preset="quick"))["config"]
    assert keys == {k.replace("-", "_") for k in summary}
    stub = ast.parse((Path(regimes.__file__).parent / "__init__.pyi").read_text())
    options = next(
        n for n in stub.body if isinstance(n, ast.ClassDef) and n.name == "StudyOptions"
    )
    named = {n.target.id: ast.unparse(n.annotation) for n in options.body
             if isinstance(n, ast.AnnAssign)}
    assert set(named) == keys | set(regimes._OPTIONS) | set(regimes._ALIASES)
    files = {k.replace("-", "_"): f for k, _, f in regimes._KEYS if f}
    # Every file the study reads is named by one of them (the coupling's schedule file sits
    # inside its spec, `additive:file:PATH`: not an array).
    assert set(files) == {"u", "q", "mean", "within_cov", "mixture_file", "train_file",
                          "train_labels"}
    assert set(regimes._SPEC_ARRAYS) == {k for k, f in files.items() if f == "spec"}
    assert set(regimes._FILE_ARRAYS) == {k for k, f in files.items() if f == "path"}
    for k, f in files.items():
        assert named[k] == ("Spec" if f == "spec" else "FileOrArray"), k
    for alias, key in regimes._ALIASES.items():
        assert named[alias] == named[key]
    # progress= and stop= on every study.
    functions = {n.name: n for n in stub.body if isinstance(n, ast.FunctionDef)}
    for name in ("theory", "run", "speciation", "collapse", "sweep"):
        kwonly = {a.arg for a in functions[name].args.kwonlyargs}
        assert {"progress", "stop"} <= kwonly, name
    doc = " ".join(regimes.speciation.__doc__.split())
    assert "branch_times=T1,T2,...|auto" in doc and "pairs=N" in doc
    assert "Example: branch_times=[0.5, 1, 1.5, 2]" in doc and "--" not in doc
    assert 'Example: q="pair:0:15:-2.5"' in doc


def test_docstrings_teach_the_keys_each_study_reads():
    """Every key a study reads (from the library's declaration) is a keyword of its
    docstring, and no other key is; a sweep's teaches every key; bench's its options."""
    every = {name for name, *_ in regimes._native.keys()}
    assert every == {k for k, _, _ in regimes._KEYS}

    def taught(doc):
        return {k for k in every if f"\n    {k.replace('-', '_')}=" in doc}

    for study in ("theory", "run", "speciation", "collapse"):
        doc = getattr(regimes, study).__doc__
        reads = {name for name, *_ in regimes._native.keys(study)}
        assert reads and taught(doc) == reads, study
        for option in regimes._OPTIONS:
            assert f"\n    {option}=" in doc, (study, option)
    assert taught(regimes.sweep.__doc__) == every
    assert "entropy_times" not in regimes.speciation.__doc__
    bench = regimes.bench.__doc__
    for name, *_ in regimes._native.bench_keys()[1]:
        assert name == "json" or f"\n    {name.replace('-', '_')}=" in bench, name
    with pytest.raises(regimes.ConfigError, match="unknown study"):
        regimes._native.keys("nonsense")


def test_to_pandas_when_installed():
    pd = pytest.importorskip("pandas")
    res = regimes.speciation(quiet=True, pairs=500, **SMALL)
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df["phi"]) == res.phi.tolist()


# ---------------------------------------------------------------------------------------------
# Progress and stop requests per run

# Seconds of work on 2 cores, in batches of 1024 pairs: a stop lands between batches.
LONG = dict(preset="biroli", backend="cpu", threads=2, pairs=200_000, batch=1024, quiet=True)


def test_progress_reaches_a_callback_and_changes_nothing():
    calls = []
    config = dict(SMALL, branch_times=[0.5, 1.0, 2.0], pairs=3000, quiet=True)
    res = regimes.speciation(progress=lambda *a: calls.append(a), **config)
    assert calls, "the callback was never called"
    done = [c[0] for c in calls]
    assert done == sorted(done) and all(c[1] > 0 for c in calls)
    # The last call is the finished run's.
    last = calls[-1]
    assert last[0] == last[1] and last[2] > 0 and last[3] == 0
    # Watching the run changes none of its numbers.
    plain = regimes.speciation(**config)
    assert untimed(res.to_dict()) == untimed(plain.to_dict())


def test_a_stop_from_the_callback_ends_that_run_only(tmp_path):
    import threading

    stop = regimes.Stop()
    assert not stop.requested
    calls = []

    def progress(done, total, rate, eta):
        calls.append((done, total))
        if done >= 0.05 * total:
            stop.request()

    # Another run in another thread goes on while this one stops: the stop is this run's.
    other = {}
    thread = threading.Thread(
        target=lambda: other.update(res=regimes.speciation(pairs=2000, quiet=True, **SMALL))
    )
    thread.start()
    res = regimes.speciation(progress=progress, stop=stop, out=tmp_path / "out", **LONG)
    thread.join()
    assert stop.requested and calls
    assert res.stopped_early.startswith("interrupted by a stop request")
    # Stopped at the next batch boundary after 5 % of the work.
    assert 0 < res.fraction_done < 0.5
    # What completed is consistent: every branch time counted the same whole batches of pairs,
    # and the files say what the result says.
    pairs = res.table().pairs
    assert len(set(pairs.tolist())) == 1 and pairs[0] % 512 == 0
    assert 0 < pairs[0] < LONG["pairs"]
    assert np.all((res.phi >= 0) & (res.phi <= 1))
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert untimed(on_disk) == untimed(res.to_dict())
    assert other["res"].fraction_done == 1.0 and other["res"].stopped_early is None


def test_progress_true_draws_a_tqdm_bar_when_installed(monkeypatch):
    import types
    bars = []

    class FakeTqdm:
        def __init__(self, total, desc, **kw):
            self.total, self.desc, self.n, self.closed = total, desc, 0, False
            bars.append(self)

        def update(self, k):
            self.n += k

        def set_description(self, desc, refresh=True):
            self.desc = desc

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    regimes.speciation(progress=True, pairs=2000, quiet=True, **SMALL)
    assert bars and all(b.closed for b in bars)
    assert bars[-1].n == bars[-1].total > 0


def test_a_sweep_equals_the_cli_sweep(tmp_path):
    res = regimes.sweep("theory", over={"dim": [8, 16]}, preset="quick", out=tmp_path / "py",
                        quiet=True)
    cli("sweep", dict(preset="quick", quiet=True), "theory", "--over=dim=8,16",
        f"--out={tmp_path / 'cli'}")
    want = json.loads((tmp_path / "cli" / "sweep.json").read_text())
    assert untimed(res.to_dict()) == untimed(want)
    assert [r.dim for r in (p.config for p in res.results)] == [8, 16]
