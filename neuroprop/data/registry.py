"""``load_dataset``: a dataset by name, with its validation split held out from training data.

Splits: ``test`` is the official test set; ``val`` is a stratified, seeded hold-out
of ``val_fraction`` of the official training data; ``train`` is the rest. (The
reference code selected models on the test set; this keeps the test set for one
final report.) ``limit`` caps each split at a seeded random subset.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuroprop.data.cifar import load_cifar10, load_cifar100
from neuroprop.data.dataset import Dataset, RawArrays, Split
from neuroprop.data.digits import load_digits
from neuroprop.data.holdout import random_subset, stratified_holdout
from neuroprop.data.mnist import load_fashion_mnist, load_mnist
from neuroprop.data.tiny_imagenet import load_tiny_imagenet
from neuroprop.errors import NeuropropError

DATA_DIR_ENV = "NEUROPROP_DATA_DIR"
DEFAULT_DATA_DIR = "data"
TEST_SUBSET_SEED = 0
"""``limit`` draws the test subset with this seed, so all seeds test on the same samples."""


@dataclass(frozen=True)
class _Spec:
    loader: Callable[[Path, bool], RawArrays]
    num_classes: int
    input_shape: tuple[int, int, int]
    scale: float


_SPECS: dict[str, _Spec] = {
    "digits": _Spec(load_digits, 10, (1, 8, 8), 1 / 16),
    "mnist": _Spec(load_mnist, 10, (1, 28, 28), 1 / 255),
    "fashion_mnist": _Spec(load_fashion_mnist, 10, (1, 28, 28), 1 / 255),
    "cifar10": _Spec(load_cifar10, 10, (3, 32, 32), 1 / 255),
    "cifar100": _Spec(load_cifar100, 100, (3, 32, 32), 1 / 255),
    "tiny_imagenet": _Spec(load_tiny_imagenet, 200, (3, 64, 64), 1 / 255),
}
DATASETS: tuple[str, ...] = tuple(_SPECS)


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data folder: ``data_dir`` if given, else $NEUROPROP_DATA_DIR if set, else ./data."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser()


def load_dataset(name: str, data_dir: str | Path | None = None, val_fraction: float = 0.1,
                 seed: int = 0, download: bool = True, limit: int | None = None,
                 classes: list[int] | None = None) -> Dataset:
    """Load ``name`` from ``<data_dir>/<name>/`` (downloading it there if allowed and absent).

    Returns train (official training data minus the hold-out), val (a stratified
    ``val_fraction`` of the official training data, chosen by ``seed``) and test
    (the official test set). ``limit`` caps every split at that many samples;
    ``classes`` keeps only samples of those labels in every split (the net keeps one
    output per class of the dataset).
    """
    if name not in _SPECS:
        raise NeuropropError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if not 0.0 <= val_fraction < 1.0:
        raise NeuropropError(f"val_fraction must be in [0, 1), got {val_fraction}; "
                             "e.g. 0.1 holds out 10 % of the training data")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise NeuropropError(f"limit must be a positive integer or None, got {limit!r}")
    spec = _SPECS[name]
    raw = spec.loader(resolve_data_dir(data_dir) / name, download)
    train, val = stratified_holdout(raw.train_y, val_fraction, seed)
    train = random_subset(train, limit, (seed, 1))
    val = random_subset(val, limit, (seed, 2))
    test = random_subset(np.arange(len(raw.test_y)), limit, (TEST_SUBSET_SEED, 3))
    if classes is not None:
        unknown = sorted(set(classes) - set(range(spec.num_classes)))
        if unknown:
            raise NeuropropError(f"classes {unknown} are not labels of {name} (0 to "
                                 f"{spec.num_classes - 1}); choose labels of the dataset")
        train, val = (index[np.isin(raw.train_y[index], classes)] for index in (train, val))
        test = test[np.isin(raw.test_y[test], classes)]

    def split(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> Split:
        return Split(torch.from_numpy(x[index]), torch.from_numpy(y[index]), spec.scale)

    return Dataset(name=name, train=split(raw.train_x, raw.train_y, train),
                   val=split(raw.train_x, raw.train_y, val),
                   test=split(raw.test_x, raw.test_y, test),
                   num_classes=spec.num_classes, input_shape=spec.input_shape, scale=spec.scale)
