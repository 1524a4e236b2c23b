"""CIFAR-10 and CIFAR-100, "python version": pickled batches of 32x32 colour images.

Each batch file is a pickled dict with b'data', a (N, 3072) uint8 array laid out
channel-major (1024 red, 1024 green, 1024 blue values, each row by row), and the
labels (b'labels' for CIFAR-10, b'fine_labels' for CIFAR-100).

The batches are read by ``SafeUnpickler``, which builds only what a batch holds (dicts,
lists, strings, numbers and numpy arrays) and refuses any other global a pickle names:
a crafted batch cannot run code.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroprop.data.archive import extract_next_to
from neuroprop.data.dataset import RawArrays
from neuroprop.data.download import check_md5, fetch_or_fail
from neuroprop.errors import NeuropropError

MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class CifarFormat:
    """Where one CIFAR variant keeps its batches and labels."""

    name: str
    archive: str
    md5: str  # of the archive
    folder: str  # the archive's top folder
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: bytes
    num_classes: int


# Both archive md5s are the ones published on the CIFAR page (and used by torchvision);
# NOT verified here: no copy of the archives can be had on these machines.
CIFAR10 = CifarFormat("cifar10", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                      "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                      ("test_batch",), b"labels", 10)
CIFAR100 = CifarFormat("cifar100", "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                       "cifar-100-python", ("train",), ("test",), b"fine_labels", 100)


def load_cifar10(folder: Path, download: bool) -> RawArrays:
    """CIFAR-10 from ``folder``: its batches folder, else its archive, else a download."""
    return load_cifar(CIFAR10, folder, download)


def load_cifar100(folder: Path, download: bool) -> RawArrays:
    """CIFAR-100 (fine labels) from ``folder``: batches folder, archive, or a download."""
    return load_cifar(CIFAR100, folder, download)


def load_cifar(fmt: CifarFormat, folder: Path, download: bool) -> RawArrays:
    """Read ``fmt``'s batches, unpacking (and first downloading) its archive when needed."""
    batches = folder / fmt.folder
    if not batches.is_dir():
        archive = folder / fmt.archive
        if archive.is_file():
            check_md5(fmt.name, archive, fmt.md5)
        else:
            fetch_or_fail(fmt.name, folder, {fmt.archive: fmt.md5}, MIRRORS, download,
                          expected=[f"{fmt.folder}/ or {fmt.archive}"])
        extract_next_to(fmt.name, archive, fmt.folder)
    missing = [f for f in fmt.train_files + fmt.test_files if not (batches / f).is_file()]
    if missing:
        raise NeuropropError(f"{fmt.name}: {batches} lacks {', '.join(missing)}; delete that "
                             f"folder and put {fmt.archive} in {folder} to unpack it again")
    train = [_read_batch(fmt, batches / f) for f in fmt.train_files]
    test = [_read_batch(fmt, batches / f) for f in fmt.test_files]
    return RawArrays(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                     np.concatenate([x for x, _ in test]), np.concatenate([y for _, y in test]))


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array and dtype reconstruction (and the
    bytes encoding that protocol-2 pickles written by Python 3 use)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def _read_batch(fmt: CifarFormat, path: Path) -> tuple[np.ndarray, np.ndarray]:
    def corrupt(detail: str) -> NeuropropError:
        return NeuropropError(f"{fmt.name}: {path} is not a CIFAR python batch ({detail}); "
                              f"delete {path.parent} and unpack {fmt.archive} again (or let "
                              "it download)")

    try:
        with open(path, "rb") as handle:
            batch = SafeUnpickler(handle, encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise corrupt(f"cannot unpickle: {error}") from None
    except Exception as error:  # unpickling garbage can raise almost any exception type
        raise corrupt(f"cannot unpickle: {type(error).__name__}") from None
    if not isinstance(batch, dict):
        raise corrupt(f"holds a {type(batch).__name__}, expected a dict")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(fmt.label_key, batch.get(fmt.label_key.decode()))
    if data is None or labels is None:
        raise corrupt(f"no b'data' or {fmt.label_key!r} entry")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise corrupt(f"data is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise corrupt(f"{len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= fmt.num_classes):
        raise corrupt(f"labels outside 0..{fmt.num_classes - 1}")
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)
