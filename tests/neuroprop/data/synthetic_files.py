"""Writers of small files in the exact official formats, for the data loader tests."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from neuroprop.data import mnist
from neuroprop.data.download import md5_of


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in IDX format: 0, 0, 0x08, ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def labelled_images(rng: np.random.Generator, n: int, shape: tuple[int, ...],
                    num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n, dtype=np.int64) % num_classes
    rng.shuffle(labels)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), labels


def write_mnist_files(folder: Path, gz: bool, n_train: int = 60, n_test: int = 20,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Four IDX files of random 28x28 images; returns what was written, by file stem."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = labelled_images(rng, n_train, (28, 28), 10)
    test_x, test_y = labelled_images(rng, n_test, (28, 28), 10)
    arrays = {mnist.TRAIN_IMAGES: train_x, mnist.TRAIN_LABELS: train_y.astype(np.uint8),
              mnist.TEST_IMAGES: test_x, mnist.TEST_LABELS: test_y.astype(np.uint8)}
    for stem, array in arrays.items():
        write_idx(folder / (f"{stem}.gz" if gz else stem), array)
    return arrays


def accept_as_official(monkeypatch: pytest.MonkeyPatch, table: dict[str, str],
                       paths: list[Path]) -> None:
    """Make the loader's checksum table accept these synthetic files."""
    for path in paths:
        monkeypatch.setitem(table, path.name, md5_of(path))


def accept_content_as_official(monkeypatch: pytest.MonkeyPatch, table: dict[str, str],
                               folder: Path) -> None:
    """Make the loader's table of decompressed-data md5s (by stem) accept the IDX files in
    ``folder``, as they are now (gzipped or not)."""
    for stem in mnist.FILES:
        path = next(p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file())
        data = path.read_bytes()
        data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        monkeypatch.setitem(table, stem, hashlib.md5(data).hexdigest())


def cifar_batch(rng: np.random.Generator, n: int, label_key: bytes,
                num_classes: int) -> dict[bytes, object]:
    """A batch dict as in the official pickles: b'data' (n, 3072) uint8 and a label list."""
    data, labels = labelled_images(rng, n, (3072,), num_classes)
    batch: dict[bytes, object] = {b"batch_label": b"synthetic", b"data": data,
                                  label_key: labels.tolist(),
                                  b"filenames": [f"{i}.png".encode() for i in range(n)]}
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = (labels % 20).tolist()
    return batch


def write_cifar_folder(folder: Path, top: str, train_files: tuple[str, ...],
                       test_files: tuple[str, ...], label_key: bytes, num_classes: int,
                       per_file: int = 30, seed: int = 0) -> dict[str, dict[bytes, object]]:
    """The unpacked batches folder ``folder/top``; returns the batch dicts by file name."""
    rng = np.random.default_rng(seed)
    (folder / top).mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in train_files + test_files:
        batches[name] = cifar_batch(rng, per_file, label_key, num_classes)
        with open(folder / top / name, "wb") as handle:
            pickle.dump(batches[name], handle, protocol=2)
    return batches


def pack_tar_gz(folder: Path, top: str, archive_name: str) -> Path:
    """``folder/top`` packed as ``folder/archive_name``; the unpacked folder is removed."""
    archive = folder / archive_name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / top, arcname=top)
    shutil.rmtree(folder / top)
    return archive


def single_line(message: str) -> bool:
    return bool(message) and "\n" not in message and "\r" not in message


def write_tiny_imagenet(folder: Path, wnids: list[str], train_per_class: int = 3,
                        val_per_class: int = 2) -> dict[str, list]:
    """A tiny-imagenet-200 tree of solid-colour 64x64 JPEGs (one train image is greyscale).

    Returns the colours and wnids written, in the loader's order: train by sorted wnid
    then file name, test in val_annotations.txt order.
    """
    from PIL import Image

    root = folder / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    written: dict[str, list] = {"train_colours": [], "train_wnids": [], "test_colours": [],
                                "test_wnids": []}
    count = 0

    def save(path: Path, grey: bool = False) -> tuple[int, int, int]:
        nonlocal count
        count += 1
        colour = (count * 37 % 256, count * 91 % 256, count * 53 % 256)
        if grey:
            Image.new("L", (64, 64), colour[0]).save(path, "JPEG", quality=95)
            return (colour[0],) * 3
        Image.new("RGB", (64, 64), colour).save(path, "JPEG", quality=95)
        return colour

    for wnid in sorted(wnids):
        images = root / "train" / wnid / "images"
        images.mkdir(parents=True)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for k in range(train_per_class):
            written["train_colours"].append(save(images / f"{wnid}_{k}.JPEG", grey=count == 0))
            written["train_wnids"].append(wnid)
    lines = []
    for _ in range(val_per_class):
        for wnid in reversed(wnids):
            name = f"val_{len(lines)}.JPEG"
            written["test_colours"].append(save(root / "val" / "images" / name))
            written["test_wnids"].append(wnid)
            lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return written
