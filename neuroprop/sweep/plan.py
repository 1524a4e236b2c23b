"""A sweep's runs from its command line: seeds x grid, each a validated experiment config.

Everything is checked here, before any run starts: the seed list, the grid syntax, and the
full config of every combination (unknown keys, types, values, the network for the
dataset's shape, the rule), so that a typo stops the sweep with one line instead of
failing N runs later.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from neuroprop.config import ExperimentConfig, load_config, parse_override
from neuroprop.errors import NeuropropError
from neuroprop.training.trainer import check_experiment

SEED_KEY = "training.seed"
MAX_RUNS = 10_000
"""More runs than this in one sweep is surely a typo in --seeds or --grid."""
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")
_SEEDS_PART = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid key=v1,v2`` item: the dotted key and its values as typed."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: its directory name, seed, grid values and resolved config."""

    name: str
    seed: int
    grid: tuple[tuple[str, str], ...]
    config: ExperimentConfig

    @property
    def combination(self) -> str:
        """The grid values of this run, ``key=value`` joined by spaces (``base``: no grid)."""
        return combination_label(self.grid)


@dataclass(frozen=True)
class SweepPlan:
    config_path: Path
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]
    grid: tuple[GridAxis, ...]
    runs: tuple[PlannedRun, ...]


def combination_label(grid: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{key}={value}" for key, value in grid) or "base"


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0-9``, ``3`` or ``0,2,5-7`` as the list of seeds, each once."""
    bounds = []
    for part in text.split(","):
        match = _SEEDS_PART.fullmatch(part)
        if match is None:
            raise NeuropropError(f"--seeds {text!r}: expected seeds such as 0-9, 3 or 0,2,5-7 "
                                 "(integers >= 0; low-high is a range)")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low:
            raise NeuropropError(f"--seeds {text!r}: the range {low}-{high} runs backwards; "
                                 f"write {high}-{low}")
        bounds.append((low, high))
    if sum(high - low + 1 for low, high in bounds) > MAX_RUNS:
        raise NeuropropError(f"--seeds {text!r}: more than {MAX_RUNS} seeds; give fewer")
    seeds = [seed for low, high in bounds for seed in range(low, high + 1)]
    repeated = next((seed for i, seed in enumerate(seeds) if seed in seeds[:i]), None)
    if repeated is not None:
        raise NeuropropError(f"--seeds {text!r}: seed {repeated} is given twice; give each once")
    return tuple(seeds)


def split_values(text: str) -> list[str]:
    """Split at the commas outside brackets, so that a value may be a YAML list or map."""
    values, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(text[start:index])
            start = index + 1
    values.append(text[start:])
    return [value.strip() for value in values]


def _check_not_seed(key: str, where: str) -> None:
    if key == SEED_KEY:
        raise NeuropropError(f"{where}: a sweep sets {SEED_KEY} itself; give the seeds with "
                             "--seeds, e.g. --seeds 0-9")


def parse_grid(items: list[str]) -> tuple[GridAxis, ...]:
    """``key=v1,v2,...`` items as grid axes (keys once each, values once each)."""
    axes: list[GridAxis] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise NeuropropError(f"--grid {item!r}: expected key=value1,value2,..., e.g. "
                                 "optimizer.lr=0.1,0.5")
        parse_override(f"{key}={text}")  # the key's syntax
        _check_not_seed(key, f"--grid {item!r}")
        if any(axis.key == key for axis in axes):
            raise NeuropropError(f"--grid {item!r}: {key} is given twice; put all its values "
                                 "in one item, separated by commas")
        values = split_values(text)
        if "" in values:
            raise NeuropropError(f"--grid {item!r}: an empty value; separate the values by "
                                 "single commas")
        repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if repeated is not None:
            raise NeuropropError(f"--grid {item!r}: the value {repeated} is given twice")
        axes.append(GridAxis(key, tuple(values)))
    return tuple(axes)


def run_name(seed: int, grid: tuple[tuple[str, str], ...]) -> str:
    """The run directory's name: ``seed0-optimizer.lr=0.5`` (unsafe characters as ``_``)."""
    return _NAME_UNSAFE.sub("_", "-".join([f"seed{seed}", *(f"{k}={v}" for k, v in grid)]))


def plan_sweep(config_path: str | Path, overrides: list[str], seeds: str,
               grid: list[str]) -> SweepPlan:
    """Every (grid combination, seed) run of the sweep, each config validated in full."""
    config_path = Path(config_path)
    for text in overrides:
        _check_not_seed(".".join(parse_override(text)[0]), f"override {text!r}")
    seed_list = parse_seeds(seeds)
    axes = parse_grid(grid)
    combinations = list(itertools.product(*([(axis.key, value) for value in axis.values]
                                            for axis in axes)))
    if len(combinations) * len(seed_list) > MAX_RUNS:
        raise NeuropropError(f"the sweep has {len(combinations) * len(seed_list)} runs, more "
                             f"than {MAX_RUNS}; give fewer seeds or grid values")
    check_experiment(load_config(config_path, overrides))  # the base config, named plainly
    runs: list[PlannedRun] = []
    names: dict[str, PlannedRun] = {}
    for combination in combinations:
        items = [f"{key}={value}" for key, value in combination]
        try:
            check_experiment(load_config(config_path, [*overrides, *items]))
        except NeuropropError as error:
            raise NeuropropError(f"--grid {combination_label(combination)}: {error}") from None
        for seed in seed_list:
            config = load_config(config_path, [*overrides, *items, f"{SEED_KEY}={seed}"])
            run = PlannedRun(run_name(seed, combination), seed, combination, config)
            if len(run.name.encode()) > 200:
                raise NeuropropError(f"--grid {run.combination}: the run directory name is "
                                     "longer than 200 bytes; use shorter values")
            if run.name in names:
                raise NeuropropError(
                    f"--grid: {names[run.name].combination} and {run.combination} give the "
                    f"same run directory name {run.name}; write the values differently")
            names[run.name] = run
            runs.append(run)
    return SweepPlan(config_path, tuple(overrides), seed_list, axes, tuple(runs))
