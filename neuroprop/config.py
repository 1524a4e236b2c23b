"""Experiment configuration: YAML files plus ``key=value`` overrides, validated.

An experiment is a dataset, a network description, a learning rule, an optimizer,
a learning-rate schedule and training settings::

    dataset: {name: digits, val_fraction: 0.1, shift: 0}
    network: {substrate: rate, init: {...}, layers: [...]}
    rule: brainprop            # or ebp, or {name: brainprop, epsilon: 0.02, ...}
    optimizer: {name: sgd, lr: 0.1, momentum: 0.0, weight_decay: 0.0}
    schedule: {halve_every: 100}
    training: {batch_size: 128, max_epochs: 500, patience: 45, min_delta: 0.001, seed: 0,
               time_to_accuracy: [0.9, 0.95, 0.98]}

The ``network`` and ``rule`` sections are validated by ``neuroprop.network.spec``
and ``neuroprop.rules`` once the dataset's input shape is known; the rest here.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neuroprop.errors import NeuropropError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "digits_dense.yaml"


@dataclass(frozen=True)
class DatasetConfig:
    name: str = "digits"
    val_fraction: float = 0.1
    data_dir: str | None = None
    limit: int | None = None
    classes: Any = None
    """None (all classes) or a list of class labels to keep in every split."""
    shift: int = 0
    """Training images move by a random (dy, dx) of up to this many pixels each (0: off)."""


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class ScheduleConfig:
    halve_every: int | None = 100


@dataclass(frozen=True)
class TrainingConfig:
    batch_size: int = 128
    max_epochs: int = 500
    patience: int | None = 45
    min_delta: float = 0.001
    seed: int = 0
    monitor_test: bool = False
    eval_batch_size: int = 256
    """Samples per batch of the validation and test passes (no effect on the results)."""
    time_to_accuracy: list[float] = field(default_factory=lambda: [0.9, 0.95, 0.98])
    """Validation accuracies whose first epoch and seconds are reported (a number or a list)."""


@dataclass(frozen=True)
class ExperimentConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    network: dict = field(default_factory=dict)
    rule: Any = "brainprop"
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    name: str = "experiment"

    @property
    def rule_name(self) -> str:
        return self.rule if isinstance(self.rule, str) else str(self.rule.get("name", "?"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


OPTIMIZERS = ("sgd", "adam")
MAX_SEED = 2**32 - 2
"""The largest seed: numpy's legacy RNG takes seeds below 2**32, and the trainer's
batch-order generator is seeded with seed + 1."""


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Validate ``value`` against a simple annotation (int, float, str, bool, X | None,
    list[X], where one X stands for a list of one)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        items = value if isinstance(value, list) else [value]
        try:
            return [_check_type(item, args[0], where) for item in items]
        except NeuropropError:
            raise NeuropropError(f"{where}: expected a {args[0].__name__} or a list of them "
                                 f"([] for none), got {value!r}") from None
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        if value is None and type(None) in args:
            return None
        annotation = next(a for a in args if a is not type(None))
    if annotation is Any or annotation is dict:
        if annotation is dict and not isinstance(value, dict):
            raise NeuropropError(f"{where}: expected a mapping, got {value!r}")
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool) or not isinstance(value, annotation):
        raise NeuropropError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise NeuropropError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise NeuropropError(f"{key}: unknown key; valid keys are {', '.join(names)}")
    values = {}
    for name in names:
        if name not in raw:
            continue
        sub = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], raw[name], sub)
        else:
            values[name] = _check_type(raw[name], hints[name], sub)
    return cls(**values)


def _check_values(config: ExperimentConfig) -> None:
    checks = [
        (0.0 <= config.dataset.val_fraction < 1.0, "dataset.val_fraction", "a number in [0, 1)"),
        (config.dataset.limit is None or config.dataset.limit > 0, "dataset.limit",
         "a positive integer"),
        (config.dataset.shift >= 0, "dataset.shift", "an integer >= 0 (0: no shifts)"),
        (config.optimizer.name in OPTIMIZERS, "optimizer.name", f"one of {', '.join(OPTIMIZERS)}"),
        (config.optimizer.lr > 0, "optimizer.lr", "a positive number"),
        (config.optimizer.momentum >= 0, "optimizer.momentum", "a number >= 0"),
        (config.optimizer.weight_decay >= 0, "optimizer.weight_decay", "a number >= 0"),
        (config.schedule.halve_every is None or config.schedule.halve_every > 0,
         "schedule.halve_every", "a positive integer or null"),
        (config.training.batch_size > 0, "training.batch_size", "a positive integer"),
        (config.training.eval_batch_size > 0, "training.eval_batch_size", "a positive integer"),
        (config.training.max_epochs > 0, "training.max_epochs", "a positive integer"),
        (config.training.patience is None or config.training.patience > 0,
         "training.patience", "a positive integer or null"),
        (config.training.min_delta >= 0, "training.min_delta", "a number >= 0"),
        (all(0 < t <= 1 for t in config.training.time_to_accuracy),
         "training.time_to_accuracy", "accuracies in (0, 1], e.g. [0.9, 0.98]"),
        (0 <= config.training.seed <= MAX_SEED, "training.seed",
         f"an integer in [0, {MAX_SEED}]"),
    ]
    for ok, key, expected in checks:
        if not ok:
            value = config.to_dict()
            for part in key.split("."):
                value = value[part]
            raise NeuropropError(f"{key}: expected {expected}, got {value!r}")
    classes = config.dataset.classes
    if classes is not None and not (
        isinstance(classes, list) and classes and len(set(classes)) == len(classes)
        and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes)
    ):
        raise NeuropropError(f"dataset.classes: expected null or a list of distinct class "
                             f"labels (integers >= 0), got {classes!r}")
    if not isinstance(config.rule, (str, dict)):
        raise NeuropropError(f"rule: expected a name or a mapping, got {config.rule!r}")
    if not config.network:
        raise NeuropropError("network: missing; give a network with layers (see configs/)")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and YAML-parsed value."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise NeuropropError(
            f"override {text!r}: expected key=value, e.g. optimizer.lr=0.05 or rule=ebp"
        )
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str):  # YAML 1.1 reads 1e-3 (no dot) as a string: take the number
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    return key.split("."), parsed


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of ``raw`` with each ``key=value`` override set (creating sections)."""
    result = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None or isinstance(child, str) and depth == 0 and part == "rule":
                child = {"name": child} if isinstance(child, str) else {}
                node[part] = child
            if not isinstance(child, dict):
                raise NeuropropError(
                    f"override {text!r}: {'.'.join(path[:depth + 1])} is not a section"
                )
            node = child
        node[path[-1]] = value
    return result


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with one-line errors for a missing or malformed file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NeuropropError(f"config {path}: no such file; see configs/ for examples") from None
    except OSError as err:
        raise NeuropropError(f"config {path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise NeuropropError(f"config {path}: not UTF-8 text (byte {err.object[err.start]:#04x} "
                             f"at offset {err.start}); save it as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise NeuropropError(f"config {path}: not valid YAML{where}; fix the file") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise NeuropropError(f"config {path}: expected a mapping of sections at the top level")
    return raw


def config_from_dict(raw: dict, name: str = "experiment") -> ExperimentConfig:
    """Validate a raw mapping into an ExperimentConfig (network and rule stay raw here)."""
    raw = dict(raw)
    raw.setdefault("name", name)
    config = _build(ExperimentConfig, raw, "")
    _check_values(config)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> ExperimentConfig:
    """Load ``path`` (default: the embedded digits default) and apply ``overrides``."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = apply_overrides(load_yaml(path), list(overrides))
    return config_from_dict(raw, name=path.stem)
