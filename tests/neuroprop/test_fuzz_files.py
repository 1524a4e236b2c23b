"""Fuzz: files damaged at random offsets (a flipped bit, or cut short) end in one error
line and a non-zero exit, never a traceback, and are never read as something else.

Seeded, and bounded: CASES damages each of a checkpoint (best.pt through `evaluate`,
checkpoint.pt through `train --resume`), an export (manifest.json and arrays.npz through
`run`, which must refuse them before Lava starts) and a gzipped MNIST file (through
`train`). A damage may leave the content as it was (a bit of a zip or gzip header that
no reader uses): then the command may succeed, and the test checks that what it read is
indeed the original content.
"""

import gzip
import hashlib
import io
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroprop.cli import main
from neuroprop.data import mnist
from neuroprop.deploy import run as run_module

CASES = 8
SEED = 20261204


def _damage(data: bytes, rng: np.random.Generator) -> bytes:
    """Flip one random bit (three times in four) or cut the data at a random offset."""
    offset = int(rng.integers(len(data)))
    if rng.random() < 0.75:
        damaged = bytearray(data)
        damaged[offset] ^= 1 << int(rng.integers(8))
        return bytes(damaged)
    return data[:offset]


def _outcome(capsys, code: int) -> str:
    """'refused' (one error line, status 2) or 'accepted' (status 0); anything else fails."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if code == 0:
        return "accepted"
    lines = [line for line in err.splitlines() if not line.startswith(("run directory:",
                                                                        "epoch "))]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("neuroprop: error: "), err
    return "refused"


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    assert main(["train", "--run-dir", str(folder / "run"), "--no-progress",
                 "training.max_epochs=1"]) == 0
    assert main(["export", "--target", "lava", str(folder / "run"), "--out",
                 str(folder / "export")]) == 0
    return folder / "run", folder / "export"


@pytest.mark.parametrize("name", ["best.pt", "checkpoint.pt"])
def test_damaged_checkpoints(finished, tmp_path, capsys, name):
    rng = np.random.default_rng([SEED, len(name)])
    original = (finished[0] / name).read_bytes()
    state = torch.load(io.BytesIO(original), weights_only=True)
    outcomes = []
    for case in range(CASES):
        run = tmp_path / f"run{case}"
        shutil.copytree(finished[0], run)
        (run / name).write_bytes(_damage(original, rng))
        argv = (["evaluate", str(run)] if name == "best.pt" else
                ["train", "--run-dir", str(run), "--resume", "--no-progress"])
        outcomes.append(_outcome(capsys, main(argv)))
        if outcomes[-1] == "accepted":
            damaged = torch.load(io.BytesIO((run / name).read_bytes()), weights_only=True)
            assert _same(state, damaged), f"case {case}: changed content was read"
    assert outcomes.count("refused") >= CASES // 2, outcomes


@pytest.mark.parametrize("name", ["manifest.json", "arrays.npz"])
def test_damaged_exports(finished, tmp_path, capsys, monkeypatch, name):
    """Both files are covered by a checksum: every damage is refused before Lava runs."""
    def no_lava(*args, **kwargs):
        pytest.fail(f"a damaged {name} reached Lava")

    monkeypatch.setattr(run_module, "run_in_lava_env", no_lava)
    rng = np.random.default_rng([SEED, len(name)])
    original = (finished[1] / name).read_bytes()
    for case in range(CASES):
        export = tmp_path / f"export{case}"
        shutil.copytree(finished[1], export)
        (export / name).write_bytes(_damage(original, rng))
        assert _outcome(capsys, main(["run", "--target", "lava", str(export)])) == "refused"


def test_damaged_mnist_files(tmp_path, capsys, monkeypatch):
    """A gzipped IDX file: refused, or (a header byte gzip ignores) read as the original."""
    source = tmp_path / "source"
    source.mkdir()
    generator = np.random.default_rng(0)
    contents = {}
    for stem in mnist.FILES:
        count = 40 if stem.startswith("train") else 20
        array = (generator.integers(0, 256, (count, 28, 28)) if "images" in stem else
                 np.arange(count) % 10).astype(np.uint8)
        contents[stem] = (bytes([0, 0, 8, array.ndim]) +
                          struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())
        (source / f"{stem}.gz").write_bytes(gzip.compress(contents[stem]))
        monkeypatch.setitem(mnist.MNIST_CONTENT_MD5, stem,
                            hashlib.md5(contents[stem]).hexdigest())
    rng = np.random.default_rng(SEED)
    outcomes = []
    for case in range(CASES):
        data = tmp_path / f"data{case}"
        shutil.copytree(source, data / "mnist")
        stem = mnist.FILES[case % len(mnist.FILES)]
        target: Path = data / "mnist" / f"{stem}.gz"
        target.write_bytes(_damage(target.read_bytes(), rng))
        code = main(["train", "--data-dir", str(data), "--run-dir", str(tmp_path / f"r{case}"),
                     "--no-progress", "dataset.name=mnist", "dataset.val_fraction=0.2",
                     "training.max_epochs=1"])
        outcomes.append(_outcome(capsys, code))
        if outcomes[-1] == "accepted":
            assert gzip.decompress(target.read_bytes()) == contents[stem], case
    assert outcomes.count("refused") >= CASES // 2, outcomes
