"""Tiny ImageNet (tiny-imagenet-200): 64x64 colour JPEGs of 200 classes.

Standard layout in ``<data_dir>/tiny_imagenet/tiny-imagenet-200/``: wnids.txt (the
200 class ids), train/<wnid>/images/*.JPEG (500 per class), val/images/*.JPEG with
val/val_annotations.txt (file, wnid, box; 50 per class). The official val set is
the test split here; the official test set has no labels and is not used. Class
index = position of the wnid in sorted order (the folder order of image loaders).

Decoding needs Pillow. The decoded arrays are cached beside the data as .npy files
(written atomically), so later loads skip the JPEGs; delete them to decode again.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

from neuroprop.data.archive import extract_next_to
from neuroprop.data.dataset import RawArrays
from neuroprop.data.download import check_md5, fetch_or_fail
from neuroprop.errors import NeuropropError

DATASET = "tiny_imagenet"
ROOT = "tiny-imagenet-200"
ARCHIVE = "tiny-imagenet-200.zip"
# Published md5 of the cs231n archive (the one public loaders check); NOT verified
# here: no copy of the archive can be had on these machines.
ARCHIVE_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
MIRRORS = ("http://cs231n.stanford.edu/",)
IMAGE_SIZE = 64
JPEG_SUFFIXES = (".jpeg", ".jpg")
CACHE = {field: f"{ROOT}.{field}.npy" for field in RawArrays._fields}


def load_tiny_imagenet(folder: Path, download: bool) -> RawArrays:
    """Tiny ImageNet from the .npy cache in ``folder``, else decoded from its JPEGs."""
    cached = _read_cache(folder)
    if cached is not None:
        return cached
    root = folder / ROOT
    if not root.is_dir():
        archive = folder / ARCHIVE
        if archive.is_file():
            check_md5(DATASET, archive, ARCHIVE_MD5)
        else:
            fetch_or_fail(DATASET, folder, {ARCHIVE: ARCHIVE_MD5}, MIRRORS, download,
                          expected=[f"{ROOT}/ or {ARCHIVE}"])
        extract_next_to(DATASET, archive, ROOT)
    arrays = _decode(root)
    _write_cache(folder, arrays)
    return arrays


def _read_cache(folder: Path) -> RawArrays | None:
    paths = [folder / name for name in CACHE.values()]
    if not all(path.is_file() for path in paths):
        return None
    arrays = []
    for path in paths:
        try:
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as error:
            raise NeuropropError(f"{DATASET}: cannot read the cache {path} ({error}); delete "
                                 f"the {ROOT}.*.npy files to decode the JPEGs again") from None
    cached = RawArrays(*arrays)
    for x, y in ((cached.train_x, cached.train_y), (cached.test_x, cached.test_y)):
        if x.dtype != np.uint8 or x.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE) or \
                y.shape != (len(x),):
            raise NeuropropError(f"{DATASET}: the cache in {folder} has shapes {x.shape} and "
                                 f"{y.shape}; delete the {ROOT}.*.npy files to decode again")
    return cached


def _write_cache(folder: Path, arrays: RawArrays) -> None:
    try:
        for field, name in CACHE.items():
            handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
            try:
                with os.fdopen(handle, "wb") as out:
                    np.save(out, getattr(arrays, field), allow_pickle=False)
                os.replace(temp, folder / name)
            finally:
                Path(temp).unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(f"{DATASET}: could not cache the decoded images in {folder} "
                      f"({error.strerror}); the next load decodes the JPEGs again", stacklevel=2)


def _import_pillow() -> ModuleType:
    try:
        from PIL import Image
    except ImportError:
        raise NeuropropError(f"{DATASET}: decoding its JPEG files needs Pillow, which is not "
                             "installed; run: pip install pillow") from None
    return Image


def _jpegs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in JPEG_SUFFIXES)


def _decode(root: Path) -> RawArrays:
    image_module = _import_pillow()
    fix = f"replace {root} with the official {ROOT} folder"
    wnids_file = root / "wnids.txt"
    if not wnids_file.is_file():
        raise NeuropropError(f"{DATASET}: {wnids_file} is missing; {fix}")
    wnids = sorted(set(wnids_file.read_text().split()))
    index = {wnid: i for i, wnid in enumerate(wnids)}
    train_files: list[Path] = []
    train_labels: list[int] = []
    for wnid in wnids:
        files = _jpegs(root / "train" / wnid / "images")
        if not files:
            raise NeuropropError(f"{DATASET}: no JPEG images in {root / 'train' / wnid / 'images'}"
                                 f"; {fix}")
        train_files += files
        train_labels += [index[wnid]] * len(files)
    test_files, test_labels = _read_val_annotations(root, index, fix)
    return RawArrays(_read_images(image_module, train_files, fix),
                     np.array(train_labels, dtype=np.int64),
                     _read_images(image_module, test_files, fix),
                     np.array(test_labels, dtype=np.int64))


def _read_val_annotations(root: Path, index: dict[str, int],
                          fix: str) -> tuple[list[Path], list[int]]:
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise NeuropropError(f"{DATASET}: {annotations} is missing; {fix}")
    files, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise NeuropropError(f"{DATASET}: {annotations} line {number} names no known wnid "
                                 f"(expected 'file<TAB>wnid<TAB>box'); {fix}")
        files.append(root / "val" / "images" / fields[0])
        labels.append(index[fields[1]])
    if not files:
        raise NeuropropError(f"{DATASET}: {annotations} lists no images; {fix}")
    return files, labels


def _read_images(image_module: ModuleType, files: list[Path], fix: str) -> np.ndarray:
    """Decode JPEGs to one uint8 (N, 3, 64, 64) array (grey images are made RGB)."""
    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, path in enumerate(files):
        try:
            with image_module.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, ValueError, SyntaxError) as error:
            raise NeuropropError(f"{DATASET}: cannot decode {path} ({type(error).__name__}); "
                                 f"{fix}") from None
        if rgb.size != (IMAGE_SIZE, IMAGE_SIZE):
            raise NeuropropError(f"{DATASET}: {path} is {rgb.size[0]}x{rgb.size[1]}, expected "
                                 f"{IMAGE_SIZE}x{IMAGE_SIZE}; {fix}")
        images[i] = np.asarray(rgb)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
