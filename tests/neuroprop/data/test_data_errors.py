"""Every way the data can be missing or broken ends in one line naming the problem and fix."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from synthetic_files import (
    accept_as_official,
    accept_content_as_official,
    idx_bytes,
    single_line,
    write_cifar_folder,
    write_mnist_files,
)

from neuroprop.data import DATASETS, download, load_dataset, mnist, resolve_data_dir
from neuroprop.data.cifar import CIFAR10
from neuroprop.errors import NeuropropError

GZ_FILES = [f"{stem}.gz" for stem in mnist.FILES]


def error_of(*args, **kwargs) -> str:
    with pytest.raises(NeuropropError) as error:
        load_dataset(*args, **kwargs)
    message = str(error.value)
    assert single_line(message), message
    return message


def test_unknown_name_lists_the_valid_ones() -> None:
    message = error_of("mnits")
    assert "'mnits'" in message and all(name in message for name in DATASETS)


def test_missing_folder_without_download_names_folder_files_and_fix(tmp_path: Path) -> None:
    message = error_of("mnist", tmp_path, download=False)
    assert message.startswith(f"mnist: no data in {tmp_path / 'mnist'} ")
    assert all(name in message for name in GZ_FILES)
    assert "--data-dir" in message and "NEUROPROP_DATA_DIR" in message


def test_failing_download_gives_one_line_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tried = []

    def unreachable(url: str, timeout: float):
        tried.append((url, timeout))
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(download, "_open_url", unreachable)
    message = error_of("fashion_mnist", tmp_path)
    folder = tmp_path / "fashion_mnist"
    assert message.startswith(f"fashion_mnist: no data in {folder} ")
    assert "download failed" in message and "Name or service not known" in message
    assert all(name in message for name in GZ_FILES) and "NEUROPROP_DATA_DIR" in message
    # every mirror was tried for the first file, then it gave up
    assert [url for url, _ in tried] == [m + GZ_FILES[0] for m in mnist.FASHION_MNIST_MIRRORS]
    assert all(timeout <= 10 for _, timeout in tried)
    assert not folder.exists()  # the folder it made for the download is gone again


def _serve(files: dict[str, bytes], served: list[str]):
    def open_url(url: str, timeout: float) -> io.BytesIO:
        served.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[1]])
    return open_url


def test_download_fetches_missing_files_and_checks_md5(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    written = write_mnist_files(source, gz=True)
    accept_as_official(monkeypatch, mnist.MNIST_MD5, sorted(source.iterdir()))
    accept_content_as_official(monkeypatch, mnist.MNIST_CONTENT_MD5, source)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (source / GZ_FILES[1]).rename(folder / GZ_FILES[1])  # one file already there
    served: list[str] = []
    monkeypatch.setattr(download, "_open_url", _serve(
        {path.name: path.read_bytes() for path in source.iterdir()}, served))
    dataset = load_dataset("mnist", tmp_path / "data", val_fraction=0.0)
    assert sorted(url.rsplit("/", 1)[1] for url in served) == sorted(set(GZ_FILES) -
                                                                      {GZ_FILES[1]})
    assert sorted(p.name for p in folder.iterdir()) == sorted(GZ_FILES)  # no .part files
    assert dataset.train.y.tolist() == written[mnist.TRAIN_LABELS].tolist()


def test_download_with_wrong_md5_is_rejected(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str] = []
    monkeypatch.setattr(download, "_open_url", _serve(
        dict.fromkeys(GZ_FILES, b"<html>not the file</html>"), served))
    message = error_of("mnist", tmp_path)
    assert "download failed" in message and mnist.MNIST_MD5[GZ_FILES[0]] in message
    assert not (tmp_path / "mnist").exists()  # no partial file, no empty folder


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_local_file_with_wrong_md5_is_named(tmp_path: Path, gz: bool) -> None:
    """Local MNIST files are checked by the md5 of their decompressed data, compressed or
    not (uncompressed files used to go unchecked)."""
    write_mnist_files(tmp_path / "mnist", gz=gz)  # not the official files
    message = error_of("mnist", tmp_path, download=False)
    assert str(tmp_path / "mnist" / (GZ_FILES[0] if gz else mnist.FILES[0])) in message
    assert mnist.MNIST_CONTENT_MD5[mnist.FILES[0]] in message
    assert "(decompressed)" in message and "official" in message


@pytest.mark.parametrize("wrapper", ["gzip_level_1", "gzip_level_9_named", "gzip_two_members",
                                     "no_gzip_under_gz_name", "uncompressed"])
def test_the_official_data_in_another_wrapper_is_accepted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrapper: str) -> None:
    """What counts is the decompressed data: compressed again with other settings (level,
    file name and time in the header, several members), stored raw under the .gz name
    (header stripped) or uncompressed, the official data is accepted, and one changed
    byte in it is refused."""
    source = tmp_path / "source"
    written = write_mnist_files(source, gz=False)
    accept_content_as_official(monkeypatch, mnist.MNIST_CONTENT_MD5, source)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem in mnist.FILES:
        data = (source / stem).read_bytes()
        packed = {
            "gzip_level_1": lambda d: gzip.compress(d, compresslevel=1, mtime=0),
            "gzip_level_9_named": lambda d, s=stem: _gzip_named(d, s),
            "gzip_two_members": lambda d: gzip.compress(d[:10]) + gzip.compress(d[10:]),
            "no_gzip_under_gz_name": lambda d: d,
            "uncompressed": lambda d: d,
        }[wrapper](data)
        (folder / (stem if wrapper == "uncompressed" else f"{stem}.gz")).write_bytes(packed)
    dataset = load_dataset("mnist", tmp_path, val_fraction=0.0, download=False)
    assert dataset.test.y.tolist() == written[mnist.TEST_LABELS].tolist()

    damaged = folder / (mnist.TEST_IMAGES if wrapper == "uncompressed" else
                        f"{mnist.TEST_IMAGES}.gz")
    data = bytearray((source / mnist.TEST_IMAGES).read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data) if wrapper in ("uncompressed", "no_gzip_under_gz_name")
                        else gzip.compress(bytes(data)))
    message = error_of("mnist", tmp_path, download=False)
    assert str(damaged) in message and "(decompressed)" in message


def _gzip_named(data: bytes, name: str) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buffer, compresslevel=9,
                       mtime=1234567890) as handle:
        handle.write(data)
    return buffer.getvalue()


def test_fashion_mnist_gz_files_are_checked_by_their_published_md5(tmp_path: Path) -> None:
    """The md5 of Fashion-MNIST's decompressed data is not known here: a .gz is checked by
    the published md5 of the compressed file."""
    write_mnist_files(tmp_path / "fashion_mnist", gz=True)
    message = error_of("fashion_mnist", tmp_path, download=False)
    assert mnist.FASHION_MNIST_MD5[GZ_FILES[0]] in message and "(decompressed)" not in message


def test_an_idx_header_whose_size_overflows_is_named(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Four sizes of 2**16 multiply to 2**64, which wrapped to 0 in int64 and matched an
    empty body (then numpy's reshape raised): they are refused by length."""
    folder = tmp_path / "mnist"
    write_mnist_files(folder, gz=False)
    header = bytes([0, 0, 8, 4]) + struct.pack(">4I", *[2**16] * 4)
    (folder / mnist.TRAIN_IMAGES).write_bytes(header)
    accept_content_as_official(monkeypatch, mnist.MNIST_CONTENT_MD5, folder)
    message = error_of("mnist", tmp_path, download=False)
    assert "0 data bytes, the header announces 18446744073709551616" in message


@pytest.mark.parametrize("content, expect", [
    (b"\x00\x00\x0c\x03" + bytes(20), "bad magic number"),
    (idx_bytes(np.zeros((60, 28, 28), np.uint8))[:-100], "truncated"),
    (b"\x00\x00", "bad magic number"),
], ids=["magic", "truncated", "empty"])
def test_corrupt_idx_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   content: bytes, expect: str) -> None:
    folder = tmp_path / "mnist"
    write_mnist_files(folder, gz=False)
    (folder / mnist.TRAIN_IMAGES).write_bytes(content)
    accept_content_as_official(monkeypatch, mnist.MNIST_CONTENT_MD5, folder)
    message = error_of("mnist", tmp_path, download=False)
    assert str(folder / mnist.TRAIN_IMAGES) in message and expect in message


def test_truncated_gz_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mnist"
    write_mnist_files(folder, gz=True)
    path = folder / GZ_FILES[0]
    path.write_bytes(path.read_bytes()[:200])
    message = error_of("mnist", tmp_path, download=False)
    assert str(path) in message and "not a valid IDX file" in message


def test_mismatched_labels_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mnist"
    write_mnist_files(folder, gz=False, n_train=60)
    (folder / mnist.TRAIN_LABELS).write_bytes(idx_bytes(np.zeros(59, np.uint8)))
    accept_content_as_official(monkeypatch, mnist.MNIST_CONTENT_MD5, folder)
    message = error_of("mnist", tmp_path, download=False)
    assert str(folder / mnist.TRAIN_LABELS) in message


def _write_cifar10(tmp_path: Path) -> Path:
    write_cifar_folder(tmp_path / "cifar10", CIFAR10.folder, CIFAR10.train_files,
                       CIFAR10.test_files, CIFAR10.label_key, 10, per_file=5)
    return tmp_path / "cifar10" / CIFAR10.folder


@pytest.mark.parametrize("content", [b"garbage, not a pickle", b"", b"\x80\x02K\x05."],
                         ids=["garbage", "empty", "an-int"])
def test_corrupt_cifar_batch_is_named(tmp_path: Path, content: bytes) -> None:
    batches = _write_cifar10(tmp_path)
    (batches / "data_batch_3").write_bytes(content)
    message = error_of("cifar10", tmp_path, download=False)
    assert str(batches / "data_batch_3") in message and "not a CIFAR python batch" in message


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_cifar_batch_is_refused_without_running_its_payload(tmp_path: Path) -> None:
    batches = _write_cifar10(tmp_path)
    marker = tmp_path / "payload-ran"
    with open(batches / "data_batch_2", "wb") as handle:
        pickle.dump({b"data": _Payload(marker), b"labels": [0]}, handle, protocol=2)
    message = error_of("cifar10", tmp_path, download=False)
    assert "data_batch_2" in message and "posix.system is not allowed" in message
    assert not marker.exists()


def test_incomplete_cifar_folder_is_named(tmp_path: Path) -> None:
    batches = _write_cifar10(tmp_path)
    (batches / "test_batch").unlink()
    message = error_of("cifar10", tmp_path, download=False)
    assert str(batches) in message and "test_batch" in message


def test_corrupt_cifar_archive_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from neuroprop.data import cifar

    archive = tmp_path / "cifar10" / CIFAR10.archive
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(b"not a tar archive" * 100))
    monkeypatch.setattr(cifar, "CIFAR10", dataclasses.replace(
        CIFAR10, md5=download.md5_of(archive)))
    message = error_of("cifar10", tmp_path, download=False)
    assert str(archive) in message and "cannot unpack" in message
    assert sorted(p.name for p in archive.parent.iterdir()) == [CIFAR10.archive]


def test_cifar_archive_with_wrong_md5_is_named(tmp_path: Path) -> None:
    archive = tmp_path / "cifar100" / "cifar-100-python.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"\x1f\x8b truncated")
    message = error_of("cifar100", tmp_path, download=False)
    assert str(archive) in message and "eb9058c3a382ffc7106e4002c42a8d85" in message


def test_tiny_imagenet_without_pillow_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tiny_imagenet" / "tiny-imagenet-200"
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("n01443537\n")
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes "from PIL import Image" fail
    message = error_of("tiny_imagenet", tmp_path, download=False)
    assert "Pillow" in message and "pip install pillow" in message


def test_tiny_imagenet_broken_jpeg_is_named(tmp_path: Path) -> None:
    pytest.importorskip("PIL", reason="Pillow is absent: cannot decode JPEG files")
    root = tmp_path / "tiny_imagenet" / "tiny-imagenet-200"
    images = root / "train" / "n01443537" / "images"
    images.mkdir(parents=True)
    (root / "wnids.txt").write_text("n01443537\n")
    (root / "val").mkdir()
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01443537\t0\t0\t63\t63\n")
    (images / "n01443537_0.JPEG").write_bytes(b"\xff\xd8 not really a jpeg")
    message = error_of("tiny_imagenet", tmp_path, download=False)
    assert str(images / "n01443537_0.JPEG") in message and "cannot decode" in message


@pytest.mark.parametrize("kwargs, expect", [({"val_fraction": 1.0}, "val_fraction"),
                                            ({"val_fraction": -0.1}, "val_fraction"),
                                            ({"limit": 0}, "limit")])
def test_bad_arguments_are_named(kwargs: dict, expect: str) -> None:
    assert expect in error_of("digits", **kwargs)


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROPROP_DATA_DIR", str(tmp_path / "from-env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir(None) == tmp_path / "from-env"
    monkeypatch.delenv("NEUROPROP_DATA_DIR")
    assert resolve_data_dir(None) == Path("data")
    monkeypatch.setenv("NEUROPROP_DATA_DIR", str(tmp_path / "env-data"))
    message = error_of("cifar10", download=False)
    assert str(tmp_path / "env-data" / "cifar10") in message


def test_partly_missing_files_are_listed(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_mnist_files(folder, gz=False)
    (folder / mnist.TEST_LABELS).unlink()
    message = error_of("mnist", tmp_path, download=False)
    assert message.startswith(f"mnist: incomplete data in {folder} (expected "
                              f"{mnist.TEST_LABELS}.gz)")
    assert "downloading is off" in message
