"""Unpacking an official archive (.tar.gz or .zip) next to itself, whole or not at all."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from neuroprop.errors import NeuropropError


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        bad = [m.name for m in members if _unsafe(m.name) or not (m.isfile() or m.isdir())]
        if bad:
            raise tarfile.TarError(f"unsafe or special member {bad[0]!r}")
        # The "data" filter (Python >= 3.10.12 / 3.11.4) adds its own checks where it exists.
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(into, members=members, **options)


def _extract_zip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as package:
        bad = [name for name in package.namelist() if _unsafe(name)]
        if bad:
            raise zipfile.BadZipFile(f"unsafe member {bad[0]!r}")
        package.extractall(into)


def extract_next_to(dataset: str, archive: Path, top_folder: str) -> Path:
    """Unpack ``archive`` and move its ``top_folder`` to ``archive.parent / top_folder``.

    Unpacking goes to a temporary folder beside the archive; the finished folder is
    then renamed into place, so an interrupted run leaves no half-unpacked data.
    """
    target = archive.parent / top_folder
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{top_folder}-", dir=archive.parent))
    except OSError as error:
        raise NeuropropError(f"{dataset}: cannot unpack {archive}: {archive.parent} is not "
                             f"writable ({error.strerror}); unpack it yourself there or "
                             "copy both to a writable --data-dir") from None
    try:
        if archive.name.endswith(".zip"):
            _extract_zip(archive, temp)
        else:
            _extract_tar(archive, temp)
        unpacked = temp / top_folder
        if not unpacked.is_dir():
            raise NeuropropError(f"{dataset}: {archive} holds no {top_folder}/ folder (not "
                                 "the official archive); replace it with the official one")
        os.replace(unpacked, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        detail = " ".join(str(error).split())
        raise NeuropropError(f"{dataset}: cannot unpack {archive} ({detail}); replace it with "
                             "an intact copy, or delete it to download it again") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target
