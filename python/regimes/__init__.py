"""regimes from Python: the studies of the ``regimes`` command line with NumPy arrays in and out.

Every function takes the config keys of the command line as keyword arguments, with ``_`` for
``-`` (``branch_times=[0.5, 1, 2]`` is ``--branch-times 0.5,1,2``), and NumPy arrays wherever a
key reads a file (``u``, ``q``, ``mean``, ``within_cov``, ``mixture_file`` alias ``mixture``,
``train_file`` alias ``train``, ``train_labels`` alias ``labels``: the keys of the library's
declaration that name a file). The package builds the study's config from them and the library
checks it as it checks the command line's: a refused setting raises :class:`ConfigError`; a run
that fails or stops early raises :class:`RunError`.

``progress=`` shows a run as it goes: a callable ``progress(done, total, rate, eta)`` (in
particle-steps, particle-steps per second, seconds left or None), called on the calling thread
at most ten times a second; or ``True`` for a tqdm bar (the notebook widget in a notebook) when
tqdm is installed, else a line on stderr. ``stop=regimes.Stop()`` stops that run when
``stop.request()`` is called (from the callback, another thread, a button): it ends at the end
of the engine's current segment (about a second of work) and returns what completed
(``res.stopped_early``, ``res.fraction_done``). Ctrl-C stops the current run only, likewise,
and raises KeyboardInterrupt; with ``out=`` the directory then holds the partial results, as
the CLI leaves them.

    >>> import regimes
    >>> res = regimes.speciation(preset="quick", backend="cpu", quiet=True)
    >>> res.t_s_measured, res.t_s_stderr, res.theory.t_s
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import shutil
import tempfile
import textwrap
from pathlib import Path

import numpy as np

# Mesa's Vulkan drivers (lavapipe) complain at every adapter enumeration when XDG_RUNTIME_DIR is
# unset, as on servers and in CI; the CLI gives them the temp dir, and so does the package.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())

from . import _native  # noqa: E402
from ._native import ConfigError, RunError, Stop  # noqa: E402

__all__ = [
    "ConfigError",
    "RunError",
    "Stop",
    "Result",
    "SpeciationResult",
    "SweepResult",
    "Section",
    "Table",
    "theory",
    "run",
    "speciation",
    "collapse",
    "sweep",
    "bench",
]

# The library's config keys (config::keys::KEYS): (name, section, file), file being "spec" for
# a key whose spec may name a file (an array becomes `file:PATH`), "path" for a key whose value
# is a file (an array becomes `PATH`).
_KEYS = tuple(_native.config_keys())
_SPEC_ARRAYS = tuple(n.replace("-", "_") for n, _, f in _KEYS if f == "spec")
_FILE_ARRAYS = tuple(n.replace("-", "_") for n, _, f in _KEYS if f == "path")
_ALIASES = {"mixture": "mixture_file", "train": "train_file", "labels": "train_labels"}
# The keyword arguments that are not config keys: the layers under the keys, and the options
# of one invocation; each with what it takes and its help, for the docstrings (`progress=` and
# `stop=`, parameters of their own, are in the module's docstring).
_OPTIONS = {
    "preset": ("NAME", "Start from a named preset; a config file and keyword arguments apply "
               "on top:"),
    "config": ("PATH", "A TOML file with any of the keys below, kebab-case "
               "(`branch-times = [0.5, 1]`); keyword arguments override it."),
    "out": ("DIR", "Directory for summary.json, CSV series, plots and samples (created; "
            "refused if it exists and is not empty, unless force=True)."),
    "force": ("", "Write into an existing non-empty out directory, replacing files of the "
              "same name."),
    "quiet": ("", "No progress bar or notes on stderr."),
    "shard": ("I/N", "Run slice I of N (from 0) of the particles (clone pairs) and write its "
              "mergeable statistics to out; `regimes merge` combines the N shard directories. "
              'Example: shard="0/3"'),
    "checkpoint_every": ("STEPS|DURATION", "Write a checkpoint into out every so many time "
                         "steps (500) or so much wall time (30s, 10m, 1h); `regimes resume DIR` "
                         "continues the run exactly."),
    "devices": ("all|LIST", "Run one slice per GPU adapter and merge them at the end: all, or "
                "indices and name substrings from `regimes devices`, comma separated. "
                'Example: devices="0,1"'),
}
# The table `to_pandas()` and `table()` give by default, per command.
_MAIN_TABLE = {
    "theory": "s_curve",
    "run": "record",
    "speciation": "phi",
    "collapse": "excess_entropy",
}


# ---------------------------------------------------------------------------------------------
# Results


def _column(values):
    """A column of the summary as an array: numbers (null → NaN), nested lists (2-D), or the
    values themselves when they are not numbers."""
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(v is None or isinstance(v, (int, float, list)) for v in values):
        try:
            return np.array(
                [np.nan if v is None else v for v in values], dtype=np.float64
            )
        except (TypeError, ValueError):
            pass
    return list(values)


def _convert(value):
    if isinstance(value, dict):
        return Section(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return Table(value)
    if isinstance(value, list) and all(
        v is None or isinstance(v, (int, float, list)) for v in value
    ):
        return _column(value)
    return value


class Section:
    """A part of a summary: its keys as attributes (a list of records is a :class:`Table`, a
    list of numbers a NumPy array with NaN for null, a nested object a Section)."""

    def __init__(self, data: dict):
        self._data = data

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        # Config keys are kebab-case (`t-max`): `section.t_max` reads them.
        key = name if name in self._data else name.replace("_", "-")
        try:
            return _convert(self._data[key])
        except KeyError:
            raise AttributeError(
                f"no key {name!r} here; the keys are {', '.join(self._data)}"
            ) from None

    def __getitem__(self, name):
        return self._data[name]

    def __dir__(self):
        return sorted(set(super().__dir__()) | {k.replace("-", "_") for k in self._data})

    def keys(self):
        return self._data.keys()

    def to_dict(self) -> dict:
        """The keys and values as in summary.json."""
        return json.loads(json.dumps(self._data))

    def __repr__(self):
        scalars = {
            k: v for k, v in self._data.items() if not isinstance(v, (dict, list))
        }
        return f"{type(self).__name__}({scalars})"


class Table:
    """A list of records of a summary (one per branch time, record time, …): each column is a
    NumPy array (``tab.t``, ``tab.phi``), ``tab[i]`` is a record, ``to_pandas()`` a DataFrame."""

    def __init__(self, records: list):
        self._records = records
        self.columns = list(dict.fromkeys(k for r in records for k in r))

    def __getattr__(self, name):
        if name.startswith("_") or name not in self.columns:
            raise AttributeError(
                f"no column {name!r}; the columns are {', '.join(self.columns)}"
            )
        return _column([r.get(name) for r in self._records])

    def __getitem__(self, i):
        return self._records[i]

    def __len__(self):
        return len(self._records)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.columns))

    def to_dict(self) -> dict:
        """Column name → array."""
        return {c: getattr(self, c) for c in self.columns}

    def to_pandas(self):
        """The records as a pandas DataFrame (pandas is not a dependency of regimes)."""
        import pandas as pd

        return pd.DataFrame.from_records(self._records, columns=self.columns)

    def __repr__(self):
        return f"Table({len(self)} rows: {', '.join(self.columns)})"


class Result(Section):
    """What a study produced: the summary's keys as attributes (``res.t_s_measured``,
    ``res.theory.t_s``, ``res.warnings``), ``res.summary`` (summary.json as a dict), ``res.text``
    (the table the CLI prints), ``res.out`` and ``res.files`` (with ``out=``), ``res.samples``
    (the final particles, particles × d, with ``save_samples=True``)."""

    def __init__(self, report: dict, samples=None):
        summary = report.get("summary", report)
        super().__init__(summary)
        self.summary = summary
        self.text = report.get("table", "")
        self.out = Path(report["out"]) if report.get("out") else None
        self.files = report.get("files", [])
        self.samples = samples

    @property
    def t_s_stderr(self):
        """The standard error of the measured t_S (summary key ``t_s_measured_stderr``)."""
        return self._data["t_s_measured_stderr"]

    def table(self, key: str | None = None) -> Table:
        """A list of records of the summary as a :class:`Table`; by default the study's
        headline series (speciation: phi, run: record, collapse: excess_entropy, theory:
        s_curve)."""
        key = key or _MAIN_TABLE.get(self._data.get("command"), "")
        value = self._data.get(key)
        if not isinstance(value, list):
            raise KeyError(f"no table {key!r} in this {self._data.get('command')} summary")
        return Table(value)

    def to_pandas(self, key: str | None = None):
        """:meth:`table` as a pandas DataFrame (pandas is not a dependency of regimes)."""
        return self.table(key).to_pandas()

    def __repr__(self):
        head = {
            k: self._data[k]
            for k in ("command", "backend", "t_s_measured", "t_s_measured_stderr",
                      "t_c_measured", "t_s", "t_c", "fraction_done")
            if k in self._data
        }
        return f"{type(self).__name__}({head})"


class SpeciationResult(Result):
    """A cloning experiment: ``res.t`` (the branch times) and ``res.phi`` (φ at each) as
    arrays, with ``phi_stderr``, ``phi_theory`` (F(s(t))) and ``phi_posterior``;
    ``res.table()`` has every column."""

    @property
    def t(self) -> np.ndarray:
        return self.table("phi").t

    @property
    def phi(self) -> np.ndarray:
        return self.table("phi").phi

    @property
    def phi_stderr(self) -> np.ndarray:
        return self.table("phi").stderr

    @property
    def phi_theory(self) -> np.ndarray:
        return self.table("phi").phi_theory

    @property
    def phi_posterior(self) -> np.ndarray:
        return self.table("phi").phi_posterior


class SweepResult(Result):
    """A sweep: sweep.json's keys as attributes, ``res.points`` (a :class:`Table`),
    ``res.results`` (each point's :class:`Result`, read from its directory) and ``to_pandas()``
    (the tidy sweep.csv)."""

    @property
    def results(self) -> list:
        kinds = {"speciation": SpeciationResult}
        out = []
        for p in self._data["points"]:
            path = self.out / p["dir"] / "summary.json"
            summary = json.loads(path.read_text()) if path.exists() else {}
            out.append(kinds.get(self._data["study"], Result)({"summary": summary}))
        return out

    def table(self, key: str | None = None) -> Table:
        return Table(self._data[key or "points"])

    def to_pandas(self, key: str | None = None):
        """The tidy sweep.csv (one row per point and series value) as a DataFrame; with a key,
        that list of sweep.json."""
        if key is not None:
            return super().to_pandas(key)
        import pandas as pd

        return pd.read_csv(self.out / "sweep.csv")


# ---------------------------------------------------------------------------------------------
# Keyword arguments → the library's request


def _value(key: str, value):
    """A keyword argument's value as the config reads it (JSON: numbers, text, lists)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ConfigError(f"{key}={value!r}: not a finite number")
        return float(value)
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_value(key, v) for v in np.asarray(value, dtype=object).ravel()]
    raise ConfigError(f"cannot pass a {type(value).__name__} as {key}: {value!r}")


def _is_array(value) -> bool:
    return not isinstance(value, (str, os.PathLike)) and (
        isinstance(value, np.ndarray) or hasattr(value, "__array__")
        or isinstance(value, (list, tuple))
    )


def _asked(config: dict, scratch: Path) -> dict:
    """The request of keyword arguments: the config's layers (preset, config file, keys) and
    the invocation's options; arrays go to .npy files in `scratch`."""
    asked = {"keys": {}}
    for key, value in config.items():
        key = _ALIASES.get(key, key)
        if value is None:
            continue
        if key in _OPTIONS:
            if key in ("preset", "devices", "shard", "checkpoint_every"):
                value = str(value)
            elif key in ("config", "out"):
                value = os.fspath(value)
            else:
                value = bool(value)
            asked[key] = value
            continue
        if key == "json":  # the CLI's --json: no notes on stderr
            asked["quiet"] = asked.get("quiet", False) or bool(value)
            continue
        if key in _SPEC_ARRAYS + _FILE_ARRAYS and _is_array(value):
            path = scratch / f"{key}.npy"
            np.save(path, np.asarray(value, dtype=np.float64))
            value = f"file:{path}" if key in _SPEC_ARRAYS else str(path)
        asked["keys"][key.replace("_", "-")] = _value(key, value)
    return asked


class _Tqdm:
    """tqdm's bar (the notebook widget in a notebook) over the run's particle-steps."""

    def __init__(self, tqdm):
        self._tqdm, self._bar, self._count = tqdm, None, None

    def __call__(self, done, total, rate, eta, what, count):
        if count != self._count:
            self.close()
            self._bar = self._tqdm(total=total, desc=what, unit="particle-steps",
                                   unit_scale=True, leave=True)
            self._count = count
        bar = self._bar
        if bar.total != total:
            bar.total = total
        if bar.desc != what:
            bar.set_description(what, refresh=False)
        bar.update(done - bar.n)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _Line:
    """A one-line progress report on stderr, where tqdm is not installed."""

    def __call__(self, done, total, rate, eta, what, count):
        import sys
        pct = 100.0 * done / max(total, 1)
        left = "—" if eta is None else f"{eta:.0f} s"
        sys.stderr.write(f"\r{what}: {pct:5.1f} %  {rate:.3g} particle-steps/s  ETA {left}  ")
        sys.stderr.flush()

    def close(self):
        import sys
        sys.stderr.write("\n")


class _Callback:
    """A user's ``progress(done, total, rate, eta)``."""

    def __init__(self, f):
        self._f = f

    def __call__(self, done, total, rate, eta, what, count):
        self._f(done, total, rate, eta)

    def close(self):
        pass


def _watcher(progress):
    if progress is None or progress is False:
        return None
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Line()
        return _Tqdm(tqdm)
    if callable(progress):
        return _Callback(progress)
    raise ConfigError(
        f"progress={progress!r}: give True (tqdm when installed), False, or a callable "
        "progress(done, total, rate, eta)"
    )


def _run(command: str, asked: dict, progress=None, stop=None) -> dict:
    if stop is not None and not isinstance(stop, Stop):
        raise ConfigError(f"stop={stop!r}: give a regimes.Stop()")
    watcher = _watcher(progress)
    try:
        return json.loads(_native.study(command, json.dumps(asked), watcher, stop))
    finally:
        if watcher is not None:
            watcher.close()


def _raise_unfinished(report: dict, result) -> None:
    if report.get("write_error"):
        e = RunError(
            "not every file could be written to the output directory: "
            f"{report['write_error']}; .result holds the result"
        )
        e.result = result
        raise e
    # A stop the caller requested (its Stop) returns what completed.
    if report.get("stopped") and not report.get("requested"):
        e = RunError(
            f"stopped early ({report['stopped']}); .result holds what completed"
        )
        e.result = result
        raise e


def _study(command: str, config: dict, cls=Result, progress=None, stop=None) -> Result:
    with tempfile.TemporaryDirectory(prefix="regimes-") as scratch:
        scratch = Path(scratch)
        asked = _asked(config, scratch)
        # The samples are written to the output directory: a private one when none is given.
        wants_samples = bool(config.get("save_samples")) and command in ("run", "collapse")
        private_out = wants_samples and config.get("out") is None
        if private_out:
            asked["out"] = str(scratch / "out")
        report = _run(command, asked, progress, stop)
        samples = None
        if wants_samples and report.get("out"):
            path = Path(report["out"]) / "samples.npy"
            if path.exists():
                samples = np.load(path)
        if private_out:
            report["out"], report["files"] = None, []
        result = cls(report, samples)
    _raise_unfinished(report, result)
    return result


def theory(*, progress=None, stop=None, **config) -> Result:
    return _study("theory", config, progress=progress, stop=stop)


def run(*, progress=None, stop=None, **config) -> Result:
    return _study("run", config, progress=progress, stop=stop)


def speciation(*, progress=None, stop=None, **config) -> SpeciationResult:
    return _study("speciation", config, SpeciationResult, progress, stop)


def collapse(*, progress=None, stop=None, **config) -> Result:
    return _study("collapse", config, progress=progress, stop=stop)


def sweep(study: str, over: dict, *, progress=None, stop=None, **config) -> SweepResult:
    with tempfile.TemporaryDirectory(prefix="regimes-") as scratch:
        asked = _asked(config, Path(scratch))
        asked["over"] = {
            key.replace("_", "-"): _value(
                key, values if isinstance(values, (list, tuple, np.ndarray)) else [values]
            )
            for key, values in over.items()
        }
        report = _run("sweep:" + study, asked, progress, stop)
    result = SweepResult(report)
    _raise_unfinished(report, result)
    return result


def bench(**options) -> Table:
    """Engine throughput on the standard workloads: one record per workload and engine (the
    records of ``regimes bench --json``); ``.header`` holds the header lines of the CLI's
    table."""
    asked = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "json":  # the CLI's --json: no progress notes
            asked["progress"] = not value
            continue
        if key == "workload" and isinstance(value, str):
            value = [w.strip() for w in value.split(",") if w.strip()]
        asked[key.replace("_", "-")] = _value(key, value)
    report = json.loads(_native.bench(json.dumps(asked)))
    table = Table(report["records"])
    table.header = report["header"]
    table.exported = report["exported"]
    return table


# ---------------------------------------------------------------------------------------------
# Docstrings: the library's declarations of the keys (config::keys, each study's READS) and of
# bench's options, in keyword names

_EXAMPLES = re.compile(r"(Examples?: )((?:--[a-z][a-z0-9-]* \S*[^\s,.](?:, )?)+)")


def _literal(text: str) -> str:
    """A flag's value as a Python literal: a number, a list of numbers, or text."""
    def number(t):
        try:
            float(t)
            return True
        except ValueError:
            return False

    parts = text.split(",")
    if all(number(p) for p in parts):
        return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return f'"{text}"'


def _prose(text: str) -> str:
    """A help text with its flags as keywords: `--branch-times` → ``branch_times``, `Example:
    --x v` → `Example: x=v` (v a Python literal)."""
    text = _EXAMPLES.sub(
        lambda m: m.group(1) + ", ".join(
            f'{k.replace("-", "_")}={_literal(v)}'
            for k, v in re.findall(r"--([a-z][a-z0-9-]*) (\S*[^\s,.])", m.group(2))
        ),
        text,
    )
    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)",
                  lambda m: "``" + m.group(1).replace("-", "_") + "``", text)


def _entry(name: str, value: str, help: str, choices=()) -> str:
    """One keyword: `name=VALUE` (`name=True` for a switch), its help indented under it."""
    head = f"    {name}={value or 'True'}"
    help = help.strip()
    if not help.endswith((".", ":")):  # (clap drops a lone sentence's period)
        help += "."
    if choices:
        help += f" Values: {', '.join(choices)}."
    body = textwrap.fill(" ".join(_prose(help).split()), width=96, initial_indent=" " * 8,
                         subsequent_indent=" " * 8)
    return head + "\n" + body


def _options() -> list:
    """The entries of `_OPTIONS`, with the presets listed under `preset=`."""
    presets = "\n".join(
        textwrap.fill(f"{n}: {d}", width=96, initial_indent=" " * 10,
                      subsequent_indent=" " * 12)
        for n, d in _native.presets()
    )
    return [_entry(n, v, h) + ("\n" + presets if n == "preset" else "")
            for n, (v, h) in _OPTIONS.items()]


def _keywords(documented, groups=None) -> str:
    """The "Keyword arguments" section: `groups` (heading → entries) first, then the
    documented keys grouped by heading, in the order of their declaration."""
    groups = dict(groups or {})
    for name, value, heading, help, choices in documented:
        groups.setdefault(heading, []).append(
            _entry(name.replace("-", "_"), value, help, choices)
        )
    return "Keyword arguments:\n\n" + "\n\n".join(
        f"{heading}:\n" + "\n".join(entries) for heading, entries in groups.items()
    )


def _doc(study: str | None, intro: str) -> str:
    """A study's docstring (a sweep's, reading every key, for None)."""
    return intro.strip() + "\n\n" + _keywords(_native.keys(study), {"Options": _options()})


theory.__doc__ = _doc("theory", """
Theoretical predictions only (spectral gaps, s(t), t_S, t_C, stiffness of the step); returns a
:class:`Result` (``res.t_s``, ``res.t_c``, ``res.s_curve``).
""")
run.__doc__ = _doc("run", """
Runs particles from T to 0 and records moments, class fractions and posterior purity; returns a
:class:`Result` (``res.record`` a Table, ``res.samples`` with ``save_samples=True``).
""")
speciation.__doc__ = _doc("speciation", """
The cloning experiment: φ(t), the probability that two clones branched at t end in the same
class, against F(s(t)), and the measured t_S; returns a :class:`SpeciationResult` (``res.t``,
``res.phi``, ``res.phi_stderr``, ``res.phi_theory``, ``res.t_s_measured``, ``res.t_s_stderr``,
``res.theory.t_s``).
""")
collapse.__doc__ = _doc("collapse", """
Collapse on the empirical target: collapse times, excess entropy and the clone-collapse
fraction beside the REM time t_C; returns a :class:`Result` (``res.t_c_measured``,
``res.excess_entropy``, ``res.collapse_times``). Training points as ``train=array`` (N × d).
""")
sweep.__doc__ = _doc(None, """
Runs ``study`` (theory, run, speciation or collapse) at every point of the grid
``over={"q": ["zero", "optimal:1"], "dim": [8, 16]}`` (any config key, with its values) into
``out=`` (required), one directory per point, with sweep.json, the tidy sweep.csv and overlay
figures; rerunning it into the same ``out`` reuses the completed points. Returns a
:class:`SweepResult`. A key the study does not read is refused.
""")


def _bench_doc() -> str:
    about, documented = _native.bench_keys()
    # The command line's examples and its output switch (`json=True` here only quiets the
    # progress notes) are the CLI's.
    about = "\n".join(
        line if line.startswith(" ") else textwrap.fill(line, width=96)
        for line in about.split("\nExamples:")[0].strip().splitlines()
    )
    documented = [d for d in documented if d[0] != "json"]
    intro = textwrap.dedent("    " + (bench.__doc__ or "").strip())
    return intro.strip() + "\n\n" + _prose(about) + "\n\n" + _keywords(documented)


bench.__doc__ = _bench_doc()
