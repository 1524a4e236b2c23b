"""Getting official files: checksums, downloads with atomic rename, the missing-data error."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from neuroprop.errors import NeuropropError

DOWNLOAD_TIMEOUT_S = 5.0
"""Seconds a connection may stay silent before a mirror counts as unreachable."""

_CHUNK = 1 << 20
_FIX = "Put the files there or pass --data-dir / set NEUROPROP_DATA_DIR"


class DownloadFailed(Exception):
    """No mirror delivered a file with the expected checksum; the message says why."""


def md5_of(path: Path) -> str:
    """Hex md5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(dataset: str, path: Path, expected: str) -> None:
    """Raise the one-line error if ``path`` is not the official file with md5 ``expected``."""
    actual = md5_of(path)
    if actual != expected:
        raise NeuropropError(f"{dataset}: {path} has md5 {actual} where the official file has "
                             f"{expected} (corrupt or another version); replace it with the "
                             "official file, or delete it to download it again")


def check_official(dataset: str, path: Path, content: bytes, content_md5: str | None,
                   file_md5: str | None) -> None:
    """Accept ``path`` as the official file, or raise the one-line error.

    Where the md5 of the official *decompressed* data is known (``content_md5``), that is
    what is checked: ``content`` (the file's bytes, decompressed if it was compressed)
    must have it, however the file is compressed, or whether it is. Otherwise the file's
    own md5 must be the published one (``file_md5``, of the official compressed file);
    where neither is known (an uncompressed copy of a file published compressed) nothing
    is checked here, and the format's structure checks follow.
    """
    if content_md5 is not None:
        actual = hashlib.md5(content, usedforsecurity=False).hexdigest()
        if actual != content_md5:
            raise NeuropropError(
                f"{dataset}: {path} holds data with md5 {actual} (decompressed) where the "
                f"official file's data has {content_md5} (corrupt or another version); "
                "replace it with the official file, or delete it to download it again")
    elif file_md5 is not None:
        check_md5(dataset, path, file_md5)


def _open_url(url: str, timeout: float) -> BinaryIO:
    request = urllib.request.Request(url, headers={"User-Agent": "neuroprop"})
    return urllib.request.urlopen(request, timeout=timeout)


def download_file(urls: Sequence[str], dest: Path, md5: str,
                  timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch ``dest`` from the first of ``urls`` that delivers a file with this ``md5``.

    Each attempt streams into a temporary file next to ``dest``, checks the md5 and
    only then renames it to ``dest`` (atomic), so ``dest`` is whole or absent.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadFailed(f"cannot create {dest.parent}: {error.strerror}") from None
    reasons = []
    for url in urls:
        try:
            _fetch_verified(url, dest, md5, timeout)
            return
        except urllib.error.URLError as error:
            reasons.append(f"{urllib.parse.urlsplit(url).netloc}: {error.reason}")
        except (OSError, http.client.HTTPException, DownloadFailed) as error:
            reasons.append(f"{urllib.parse.urlsplit(url).netloc}: {error}")
    raise DownloadFailed("; ".join(reasons))


def _fetch_verified(url: str, dest: Path, md5: str, timeout: float) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part",
                                         dir=dest.parent)
    temp = Path(temp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(handle, "wb") as out, _open_url(url, timeout) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise DownloadFailed(f"md5 {digest.hexdigest()}, expected {md5}")
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)


def fetch_or_fail(dataset: str, folder: Path, missing: Mapping[str, str], mirrors: Sequence[str],
                  download: bool, expected: Sequence[str], found_some: bool = False) -> None:
    """Download the ``missing`` files (name -> md5) into ``folder`` from ``mirrors``, or raise.

    The error is one line naming the dataset, the folder, the ``expected`` files and
    the fix; it comes at the first file that no mirror delivers. ``found_some`` says
    that part of the data is there (the line then says "incomplete", not "no data").
    """
    problem = f"{'incomplete' if found_some else 'no'} data in {folder} " \
              f"(expected {', '.join(expected)})"
    if not download:
        raise NeuropropError(f"{dataset}: {problem}; downloading is off. {_FIX}")
    created = _missing_folders(folder)
    for name, md5 in missing.items():
        try:
            download_file([mirror + name for mirror in mirrors], folder / name, md5)
        except DownloadFailed as error:
            for made in created:  # leave no empty folders behind
                with contextlib.suppress(OSError):
                    made.rmdir()
            reason = " ".join(str(error).split())
            raise NeuropropError(f"{dataset}: {problem}; download failed (no network? "
                                 f"{reason}). {_FIX}") from None


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
