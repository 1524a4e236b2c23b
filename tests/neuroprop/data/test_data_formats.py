"""Each loader reads small files that the tests write in the exact official formats."""

from __future__ import annotations

import dataclasses
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_files import (
    accept_as_official,
    accept_content_as_official,
    pack_tar_gz,
    write_cifar_folder,
    write_mnist_files,
    write_tiny_imagenet,
)

from neuroprop.data import cifar, load_dataset, mnist, tiny_imagenet
from neuroprop.data.cifar import CIFAR10, CIFAR100, CifarFormat
from neuroprop.data.download import md5_of


def _all_train(dataset) -> tuple[np.ndarray, np.ndarray]:  # val_fraction=0: train is everything
    assert len(dataset.val) == 0
    return dataset.train.x.numpy(), dataset.train.y.numpy()


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_sets_read_back_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool,
                                    name: str) -> None:
    written = write_mnist_files(tmp_path / name, gz=gz)
    if name == "mnist":  # checked by the md5 of the decompressed data
        accept_content_as_official(monkeypatch, mnist.MNIST_CONTENT_MD5, tmp_path / name)
    elif gz:  # checked by the md5 of the .gz files
        accept_as_official(monkeypatch, mnist.FASHION_MNIST_MD5,
                           sorted((tmp_path / name).iterdir()))
    dataset = load_dataset(name, tmp_path, val_fraction=0.0, download=False)
    train_x, train_y = _all_train(dataset)
    np.testing.assert_array_equal(train_x[:, 0], written[mnist.TRAIN_IMAGES])
    np.testing.assert_array_equal(train_y, written[mnist.TRAIN_LABELS])
    np.testing.assert_array_equal(dataset.test.x.numpy()[:, 0], written[mnist.TEST_IMAGES])
    np.testing.assert_array_equal(dataset.test.y.numpy(), written[mnist.TEST_LABELS])
    assert dataset.input_shape == (1, 28, 28) and dataset.num_classes == 10
    assert dataset.scale == pytest.approx(1 / 255)
    assert dataset.train.x.dtype == torch.uint8 and dataset.train.y.dtype == torch.int64


def _cifar_expected(batches: dict, files: tuple[str, ...], label_key: bytes):
    data = np.concatenate([batches[f][b"data"] for f in files])
    labels = np.concatenate([batches[f][label_key] for f in files])
    return data, labels


@pytest.mark.parametrize("from_archive", [False, True], ids=["folder", "tar.gz"])
@pytest.mark.parametrize("fmt", [CIFAR10, CIFAR100], ids=["cifar10", "cifar100"])
def test_cifar_batches_read_back_channel_major(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               fmt: CifarFormat, from_archive: bool) -> None:
    folder = tmp_path / fmt.name
    batches = write_cifar_folder(folder, fmt.folder, fmt.train_files, fmt.test_files,
                                 fmt.label_key, fmt.num_classes)
    if from_archive:  # the loader checks the archive's md5: make it accept this one
        archive = pack_tar_gz(folder, fmt.folder, fmt.archive)
        constant = "CIFAR10" if fmt is CIFAR10 else "CIFAR100"
        monkeypatch.setattr(cifar, constant, dataclasses.replace(fmt, md5=md5_of(archive)))
    dataset = load_dataset(fmt.name, tmp_path, val_fraction=0.0, download=False)
    train_x, train_y = _all_train(dataset)
    data, labels = _cifar_expected(batches, fmt.train_files, fmt.label_key)
    # channel-major rows: x[i, c, h, w] = data[i, 1024 c + 32 h + w]
    assert train_x.shape == (len(data), 3, 32, 32)
    assert train_x[3, 2, 5, 7] == data[3, 1024 * 2 + 32 * 5 + 7]
    np.testing.assert_array_equal(train_x.reshape(len(data), -1), data)
    np.testing.assert_array_equal(train_y, labels)
    test_data, test_labels = _cifar_expected(batches, fmt.test_files, fmt.label_key)
    np.testing.assert_array_equal(dataset.test.x.numpy().reshape(len(test_data), -1), test_data)
    np.testing.assert_array_equal(dataset.test.y.numpy(), test_labels)
    assert dataset.num_classes == fmt.num_classes
    if from_archive:  # unpacked next to the archive, no temporary folder left behind
        assert sorted(p.name for p in folder.iterdir()) == sorted([fmt.archive, fmt.folder])


WNIDS = ["n09999999", "n01443537", "n02124075"]  # wnids.txt order; labels follow sorted order


def _check_tiny_imagenet(dataset, written: dict[str, list]) -> None:
    index = {wnid: i for i, wnid in enumerate(sorted(WNIDS))}
    train_x, train_y = _all_train(dataset)
    assert train_x.shape == (len(written["train_wnids"]), 3, 64, 64)
    assert train_y.tolist() == [index[w] for w in written["train_wnids"]]
    # solid colours survive JPEG within a few levels; greyscale became three equal channels
    mean_colours = train_x.reshape(len(train_x), 3, -1).mean(axis=2)
    np.testing.assert_allclose(mean_colours, written["train_colours"], atol=3)
    assert dataset.test.y.tolist() == [index[w] for w in written["test_wnids"]]
    test_colours = dataset.test.x.numpy().reshape(len(dataset.test), 3, -1).mean(axis=2)
    np.testing.assert_allclose(test_colours, written["test_colours"], atol=3)
    assert dataset.num_classes == 200 and dataset.input_shape == (3, 64, 64)


def test_tiny_imagenet_tree_decodes_and_caches(tmp_path: Path) -> None:
    pytest.importorskip("PIL", reason="Pillow is absent: cannot write or decode JPEG files")
    folder = tmp_path / "tiny_imagenet"
    written = write_tiny_imagenet(folder, WNIDS)
    first = load_dataset("tiny_imagenet", tmp_path, val_fraction=0.0, download=False)
    _check_tiny_imagenet(first, written)
    cache = sorted(p.name for p in folder.glob("*.npy"))
    assert cache == sorted(tiny_imagenet.CACHE.values())
    shutil.rmtree(folder / tiny_imagenet.ROOT)  # the second load must come from the cache
    second = load_dataset("tiny_imagenet", tmp_path, val_fraction=0.0, download=False)
    assert torch.equal(first.train.x, second.train.x) and torch.equal(first.test.y,
                                                                      second.test.y)


def test_tiny_imagenet_unpacks_its_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PIL", reason="Pillow is absent: cannot write or decode JPEG files")
    folder = tmp_path / "tiny_imagenet"
    written = write_tiny_imagenet(folder, WNIDS)
    archive = folder / tiny_imagenet.ARCHIVE
    with zipfile.ZipFile(archive, "w") as package:
        for path in sorted((folder / tiny_imagenet.ROOT).rglob("*")):
            package.write(path, path.relative_to(folder).as_posix())
    shutil.rmtree(folder / tiny_imagenet.ROOT)
    monkeypatch.setattr(tiny_imagenet, "ARCHIVE_MD5", md5_of(archive))
    dataset = load_dataset("tiny_imagenet", tmp_path, val_fraction=0.0, download=False)
    _check_tiny_imagenet(dataset, written)
    assert (folder / tiny_imagenet.ROOT / "wnids.txt").is_file()
