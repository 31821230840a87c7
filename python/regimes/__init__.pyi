# Type stubs of regimes: the keyword arguments of every study are the CLI's config keys with `_`
# for `-` (see `regimes speciation --help`); tests/test_regimes.py checks that StudyOptions
# names every key of config::keys::KEYS, and that each key that reads a file takes an array here
# (Spec or FileOrArray) as the package does.
import os
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, TypedDict, Union

import numpy as np
import numpy.typing as npt
from typing_extensions import Unpack

Number = Union[int, float]
Times = Sequence[Number] | npt.ArrayLike
PathLike = Union[str, os.PathLike[str]]
# A spec in the CLI's grammar ("geomspace:0.2:5"), or the matrix / vector itself.
Spec = Union[str, npt.ArrayLike]
# A file (.npy or CSV), or the array itself.
FileOrArray = Union[PathLike, npt.ArrayLike]

class ConfigError(Exception):
    """A setting was refused before any work started (the message is the CLI's)."""

class RunError(Exception):
    """A run failed or stopped early after it started; `.result` holds what completed."""

    result: Result | None

class Stop:
    """A stop request for one run: pass it as ``stop=``, call ``request()`` from anywhere; the run
    ends at its next step boundary and returns what completed."""

    def __init__(self) -> None: ...
    def request(self) -> None: ...
    @property
    def requested(self) -> bool: ...

# progress(done, total, rate, eta): particle-steps done and in all, particle-steps per second,
# seconds left (None before a rate is known).
ProgressCallback = Callable[[int, int, float, Optional[float]], Any]
Progress = Union[bool, None, ProgressCallback]

class StudyOptions(TypedDict, total=False):
    # Study
    preset: Literal["biroli", "lu-tang", "quick"]
    config: PathLike
    # Model
    dim: int
    u: Spec
    q: Spec
    q_lambdas: Times
    mean: Spec
    mean_norm2: Number
    sigma: Number
    within_cov: Spec
    coupling: str
    pairing: Literal["shared", "per-mode"]
    pair_angle: Number
    mixture_file: FileOrArray
    mixture: FileOrArray
    n_train: int
    train_file: FileOrArray
    train: FileOrArray
    train_labels: FileOrArray
    labels: FileOrArray
    # Sampling
    seed: int
    particles: int
    steps: Union[int, Literal["auto"]]
    t_max: Number
    scheme: Literal["auto", "euler-maruyama", "probability-flow", "exact", "exponential", "exponential-flow", "heun"]
    grid: str
    start: Literal["exact", "stationary"]
    # Engine
    backend: Literal["cpu", "gpu", "auto"]
    adapter: str
    batch: int
    threads: int
    steps_per_dispatch: int
    # Measurements
    pairs: int
    branch_times: Times
    entropy_times: Times
    record_times: Times
    entropy_samples: int
    save_samples: bool
    # Output and scale-out
    figure_size: Union[str, tuple[int, int]]
    dpi: int
    out: PathLike
    force: bool
    quiet: bool
    shard: str
    checkpoint_every: Union[int, str]
    devices: str

class BenchOptions(TypedDict, total=False):
    workload: Sequence[Literal["gmm", "dense", "empirical", "coupled"]] | str
    dim: int
    particles: int
    steps: int
    n_train: int
    backend: Literal["cpu", "gpu", "all"]
    adapter: str
    threads: int
    seed: int
    gpu_peak_gflops: Number
    gpu_variant: Literal["auto", "blocked", "onchip", "wide"]
    steps_per_dispatch: int
    export_model: PathLike
    quiet: bool

class Section:
    def __getattr__(self, name: str) -> Any: ...
    def __getitem__(self, name: str) -> Any: ...
    def keys(self) -> Any: ...
    def to_dict(self) -> dict[str, Any]: ...

class Table:
    columns: list[str]
    header: list[str]
    exported: list[str]
    def __getattr__(self, name: str) -> np.ndarray: ...
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    def __len__(self) -> int: ...
    def to_dict(self) -> dict[str, np.ndarray]: ...
    def to_pandas(self) -> Any: ...

class Result(Section):
    summary: dict[str, Any]
    text: str
    out: Path | None
    files: list[str]
    samples: np.ndarray | None
    @property
    def t_s_stderr(self) -> float: ...
    def table(self, key: str | None = None) -> Table: ...
    def to_pandas(self, key: str | None = None) -> Any: ...

class SpeciationResult(Result):
    @property
    def t(self) -> np.ndarray: ...
    @property
    def phi(self) -> np.ndarray: ...
    @property
    def phi_stderr(self) -> np.ndarray: ...
    @property
    def phi_theory(self) -> np.ndarray: ...
    @property
    def phi_posterior(self) -> np.ndarray: ...

class SweepResult(Result):
    @property
    def results(self) -> list[Result]: ...

def theory(
    *, progress: Progress = None, stop: Optional[Stop] = None, **config: Unpack[StudyOptions]
) -> Result: ...
def run(
    *, progress: Progress = None, stop: Optional[Stop] = None, **config: Unpack[StudyOptions]
) -> Result: ...
def speciation(
    *, progress: Progress = None, stop: Optional[Stop] = None, **config: Unpack[StudyOptions]
) -> SpeciationResult: ...
def collapse(
    *, progress: Progress = None, stop: Optional[Stop] = None, **config: Unpack[StudyOptions]
) -> Result: ...
def sweep(
    study: Literal["theory", "run", "speciation", "collapse"],
    over: dict[str, Sequence[Any]],
    *,
    progress: Progress = None,
    stop: Optional[Stop] = None,
    **config: Unpack[StudyOptions],
) -> SweepResult: ...
def bench(**options: Unpack[BenchOptions]) -> Table: ...
