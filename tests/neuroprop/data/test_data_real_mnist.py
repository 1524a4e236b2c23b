"""The real MNIST files in ../shared/data beside the repository (read-only) load with the
official split sizes."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from neuroprop.data import load_dataset, mnist
from neuroprop.data.idx import read_idx

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                reason=f"no real MNIST here: {SHARED / 'mnist'} is missing")


def _rows(x: np.ndarray, y: np.ndarray) -> Counter:
    return Counter(zip((row.tobytes() for row in x.reshape(len(x), -1)), y.tolist(),
                       strict=True))


def test_real_mnist_sizes_and_validation_from_train(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROPROP_DATA_DIR", str(SHARED))  # resolved from the environment
    dataset = load_dataset("mnist", val_fraction=0.1, seed=0, download=False)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (54000, 6000, 10000)
    assert tuple(dataset.train.x.shape) == (54000, 1, 28, 28)
    train_x = read_idx("mnist", SHARED / "mnist" / f"{mnist.TRAIN_IMAGES}.gz")
    train_y = read_idx("mnist", SHARED / "mnist" / f"{mnist.TRAIN_LABELS}.gz")
    assert train_x.shape == (60000, 28, 28)
    # train and val are a disjoint division of the official training set...
    parts = _rows(dataset.train.x.numpy(), dataset.train.y.numpy()) + \
        _rows(dataset.val.x.numpy(), dataset.val.y.numpy())
    assert parts == _rows(train_x, train_y)
    # ...stratified, and the test split is the official t10k set untouched
    assert np.abs(np.bincount(dataset.val.y.numpy()) - 0.1 * np.bincount(train_y)).max() < 1
    test_x = read_idx("mnist", SHARED / "mnist" / f"{mnist.TEST_IMAGES}.gz")
    np.testing.assert_array_equal(dataset.test.x.numpy()[:, 0], test_x)
    x, _ = next(dataset.test.batches(10000, shuffle=False))
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_real_mnist_compressed_again_or_uncompressed_is_accepted(tmp_path: Path) -> None:
    """The md5s of MNIST's decompressed data: the official files recompressed (level 1, no
    name, another time), decompressed, or as they are, all load to the same arrays."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    source = SHARED / "mnist"
    for stem in (mnist.TRAIN_IMAGES, mnist.TRAIN_LABELS):
        (folder / f"{stem}.gz").symlink_to(source / f"{stem}.gz")
    data = gzip.decompress((source / f"{mnist.TEST_IMAGES}.gz").read_bytes())
    (folder / f"{mnist.TEST_IMAGES}.gz").write_bytes(gzip.compress(data, 1, mtime=0))
    (folder / mnist.TEST_LABELS).write_bytes(
        gzip.decompress((source / f"{mnist.TEST_LABELS}.gz").read_bytes()))
    dataset = load_dataset("mnist", tmp_path, val_fraction=0.1, download=False)
    official = load_dataset("mnist", SHARED, val_fraction=0.1, download=False)
    assert (dataset.test.y == official.test.y).all() and (dataset.test.x == official.test.x).all()
