"""Split policy (validation held out from training data), ``limit``, and ``Split.batches``."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from synthetic_files import single_line

from neuroprop.data import Dataset, Split, load_dataset
from neuroprop.data.holdout import random_subset, stratified_holdout
from neuroprop.errors import NeuropropError


def samples(split: Split) -> Counter:
    """The split as a multiset of (image bytes, label)."""
    return Counter(zip((row.tobytes() for row in split.x.numpy()), split.y.tolist(),
                       strict=True))


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", val_fraction=0.1, seed=3)


def test_digits_shapes_scale_and_sizes(digits: Dataset) -> None:
    from sklearn.datasets import load_digits

    total = len(load_digits().target)
    assert len(digits.train) + len(digits.val) + len(digits.test) == total
    assert len(digits.test) == round(0.2 * total)
    assert len(digits.val) == round(0.1 * (total - len(digits.test)))
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert digits.scale == 1 / 16
    for split in (digits.train, digits.val, digits.test):
        assert split.x.dtype == torch.uint8 and tuple(split.x.shape[1:]) == (1, 8, 8)
        assert int(split.x.max()) == 16 and split.scale == digits.scale


def test_digits_splits_partition_the_data(digits: Dataset) -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    everything = Split(torch.from_numpy(bunch.images.astype(np.uint8)[:, None]),
                       torch.from_numpy(bunch.target.astype(np.int64)), 1 / 16)
    assert samples(digits.train) + samples(digits.val) + samples(digits.test) == \
        samples(everything)


def test_digits_splits_are_deterministic_and_test_is_fixed(digits: Dataset) -> None:
    again = load_dataset("digits", val_fraction=0.1, seed=3)
    other = load_dataset("digits", val_fraction=0.1, seed=4)
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(digits, name).x, getattr(again, name).x)
        assert torch.equal(getattr(digits, name).y, getattr(again, name).y)
    assert torch.equal(digits.test.x, other.test.x)  # the test split ignores the seed
    assert not torch.equal(digits.val.x, other.val.x)  # the validation split does not


def test_validation_comes_from_training_data_only(digits: Dataset) -> None:
    no_val = load_dataset("digits", val_fraction=0.0, seed=3)
    assert len(no_val.val) == 0
    assert torch.equal(no_val.test.x, digits.test.x)
    assert samples(digits.train) + samples(digits.val) == samples(no_val.train)


def test_stratified_holdout_keeps_class_shares() -> None:
    labels = np.repeat(np.arange(5), [40, 7, 13, 100, 1])
    np.random.default_rng(0).shuffle(labels)
    kept, held = stratified_holdout(labels, 0.25, seed=11)
    assert len(np.intersect1d(kept, held)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(labels)))
    assert len(held) == round(0.25 * len(labels))
    counts, held_counts = np.bincount(labels), np.bincount(labels[held], minlength=5)
    assert np.all(np.abs(held_counts - 0.25 * counts) < 1)
    again, _ = stratified_holdout(labels, 0.25, seed=11)
    np.testing.assert_array_equal(kept, again)


def test_random_subset_is_seeded_ordered_and_capped() -> None:
    indices = np.arange(100, 200)
    subset = random_subset(indices, 10, (1, 2))
    assert len(subset) == 10 and np.all(np.diff(subset) > 0) and np.isin(subset, indices).all()
    np.testing.assert_array_equal(subset, random_subset(indices, 10, (1, 2)))
    assert not np.array_equal(subset, np.arange(100, 110))  # not simply the first ten
    np.testing.assert_array_equal(random_subset(indices, None, (1, 2)), indices)


def test_limit_caps_every_split_with_subsets(digits: Dataset) -> None:
    small = load_dataset("digits", val_fraction=0.1, seed=3, limit=50)
    assert (len(small.train), len(small.val), len(small.test)) == (50, 50, 50)
    for name in ("train", "val", "test"):
        assert not samples(getattr(small, name)) - samples(getattr(digits, name))
    other_seed = load_dataset("digits", val_fraction=0.1, seed=4, limit=50)
    assert torch.equal(small.test.x, other_seed.test.x)


def test_classes_keep_only_those_labels_in_every_split(digits: Dataset) -> None:
    some = load_dataset("digits", val_fraction=0.1, seed=0, classes=[0, 3, 7])
    for name in ("train", "val", "test"):
        part, full = getattr(some, name), getattr(digits, name)
        assert set(part.y.tolist()) == {0, 3, 7}
        assert len(part) == int(np.isin(full.y.numpy(), [0, 3, 7]).sum())
    assert some.num_classes == 10


@pytest.mark.parametrize("classes", [[10], [-1, 2]])
def test_classes_outside_the_labels_are_one_line(classes) -> None:
    with pytest.raises(NeuropropError) as error:
        load_dataset("digits", classes=classes)
    assert single_line(str(error.value)) and "not labels of digits" in str(error.value)


def _numbered_split(n: int) -> Split:
    """Sample i carries i in its first two pixels, so batches can be traced to samples."""
    x = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n) % 256
    x[:, 0, 0, 1] = torch.arange(n) // 256
    x[:, 0, 1, 1] = 255
    return Split(x, torch.arange(n) % 10, 1 / 255)


def _sample_ids(x: torch.Tensor) -> torch.Tensor:
    raw = torch.round(x * 255).long()
    return raw[:, 0, 0, 0] + 256 * raw[:, 0, 0, 1]


@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_cover_every_sample_once(shuffle: bool) -> None:
    split = _numbered_split(1000)
    batches = list(split.batches(128, shuffle=shuffle, generator=torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [128] * 7 + [1000 - 7 * 128]
    ids = torch.cat([_sample_ids(x) for x, _ in batches])
    assert sorted(ids.tolist()) == list(range(1000))
    assert bool((ids == torch.arange(1000)).all()) is not shuffle
    for x, y in batches:
        assert torch.equal(y, _sample_ids(x) % 10)


def test_batches_are_float_in_unit_interval_and_equal_raw_times_scale(digits: Dataset) -> None:
    split = _numbered_split(300)
    for x, _ in split.batches(64, shuffle=True):
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() == 1.0
    x, _ = next(digits.train.batches(len(digits.train), shuffle=False))
    assert x.min() >= 0 and x.max() <= 1 and x.max() == 1.0
    assert torch.equal(x, digits.train.x.float() * (1 / 16))


def test_batches_shuffle_is_deterministic_with_a_generator() -> None:
    split = _numbered_split(500)

    def order(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return torch.cat([_sample_ids(x) for x, _ in split.batches(50, True, generator)]).tolist()

    assert order(7) == order(7)
    assert order(7) != order(8)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_batches_reject_a_bad_batch_size(bad) -> None:
    with pytest.raises(NeuropropError) as error:
        next(_numbered_split(10).batches(bad, shuffle=False))
    assert single_line(str(error.value)) and "batch size" in str(error.value)
