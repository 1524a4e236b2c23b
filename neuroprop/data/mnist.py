"""MNIST and Fashion-MNIST: four IDX files each, 28x28 grey images, 10 classes.

Folder ``<data_dir>/<name>/`` holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each gzipped (``.gz``) or not.

What is verified (``download.check_official``): MNIST files by the md5 of their
decompressed data, so any compression (or none) of the official data is accepted;
Fashion-MNIST ``.gz`` files by the published md5 of the compressed files (the md5 of
their data is not known here), uncompressed Fashion-MNIST files by structure only.
Downloads are checked against the published md5 of the compressed files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neuroprop.data.dataset import RawArrays
from neuroprop.data.download import check_official, fetch_or_fail
from neuroprop.data.idx import parse_idx, read_idx_bytes
from neuroprop.errors import NeuropropError

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
IMAGE_SIZE = 28
NUM_CLASSES = 10

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
# md5 of the .gz files as published (downloads are checked against them); verified
# against the copies in ../shared/data/mnist.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

# md5 of the decompressed IDX data (local files are checked against them, whatever their
# compression); computed from the copies in ../shared/data/mnist.
MNIST_CONTENT_MD5 = {
    TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
    TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
    TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
    TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
}

FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
# md5 of the .gz files as published by zalandoresearch/fashion-mnist (and used by
# torchvision). NOT verified here: no copy of the files can be had on these machines.
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CONTENT_MD5: dict[str, str] = {}
"""Not known here (no copy of the files): Fashion-MNIST .gz files are checked by their own
md5, uncompressed ones by structure only."""


def load_mnist(folder: Path, download: bool) -> RawArrays:
    """MNIST from ``folder`` (downloaded there first if files are missing and allowed)."""
    return _load_idx_set("mnist", folder, MNIST_MIRRORS, MNIST_MD5, MNIST_CONTENT_MD5,
                         download)


def load_fashion_mnist(folder: Path, download: bool) -> RawArrays:
    """Fashion-MNIST from ``folder`` (downloaded there first if missing and allowed)."""
    return _load_idx_set("fashion_mnist", folder, FASHION_MNIST_MIRRORS, FASHION_MNIST_MD5,
                         FASHION_MNIST_CONTENT_MD5, download)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_set(dataset: str, folder: Path, mirrors: Sequence[str], md5: Mapping[str, str],
                  content_md5: Mapping[str, str], download: bool) -> RawArrays:
    """``md5``: of the official .gz files, by file name; ``content_md5``: of their
    decompressed data, by stem (where known)."""
    missing = [stem for stem in FILES if _find(folder, stem) is None]
    if missing:
        fetch_or_fail(dataset, folder, {f"{stem}.gz": md5[f"{stem}.gz"] for stem in missing},
                      mirrors, download, expected=[f"{stem}.gz" for stem in missing],
                      found_some=len(missing) < len(FILES))
    arrays = {}
    for stem in FILES:
        path = _find(folder, stem)
        assert path is not None  # present or just downloaded
        content = read_idx_bytes(dataset, path)
        check_official(dataset, path, content, content_md5.get(stem), md5.get(path.name))
        arrays[stem] = parse_idx(dataset, path, content)
    train_x, train_y = _check_pair(dataset, folder, arrays, TRAIN_IMAGES, TRAIN_LABELS)
    test_x, test_y = _check_pair(dataset, folder, arrays, TEST_IMAGES, TEST_LABELS)
    return RawArrays(train_x, train_y, test_x, test_y)


def _check_pair(dataset: str, folder: Path, arrays: Mapping[str, np.ndarray], images_stem: str,
                labels_stem: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = arrays[images_stem], arrays[labels_stem]
    fix = "replace the files with the official ones"
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise NeuropropError(f"{dataset}: {folder / images_stem} holds shape {images.shape}, "
                             f"expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}); {fix}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise NeuropropError(f"{dataset}: {folder / labels_stem} holds shape {labels.shape} "
                             f"for {len(images)} images in {images_stem}; {fix}")
    if len(labels) and labels.max() >= NUM_CLASSES:
        raise NeuropropError(f"{dataset}: {folder / labels_stem} has label {labels.max()}, "
                             f"expected 0..{NUM_CLASSES - 1}; {fix}")
    return images[:, None], labels.astype(np.int64)
