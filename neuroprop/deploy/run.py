"""``neuroprop run --target lava``: score an export on Lava's simulator against its references.

Three models see the same samples: the export's own float weights (the float network it
was quantised from, evaluated by ``hardware.emulator.forward_float``), neuroprop's numpy
integer model of Loihi's fixed-point arithmetic (the emulator), and Lava's Loihi
simulator. Lava must match the emulator bit for bit; the float model tells what
quantisation cost. Only the export is read (its dataset is named in its metadata): the
run it came from may have trained on since, and no checkpoint is loaded. Results go to
``lava_summary.json``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from hardware.emulator import forward_fixed, forward_float
from hardware.format import load_export
from hardware.graph import HardwareNetwork
from neuroprop.data import Dataset
from neuroprop.deploy.lava_env import run_in_lava_env
from neuroprop.errors import NeuropropError
from neuroprop.training.checkpoint import write_json

FLOAT_TOLERANCE = 1e-5


def export_dataset(net: HardwareNetwork, data_dir: str | Path | None,
                   every_class: bool = False) -> Dataset:
    """The dataset named in an export's metadata, split as when it was exported; with
    ``every_class``, all its classes even where the run kept only some
    (``dataset.classes``)."""
    from neuroprop.data import load_dataset

    meta = net.metadata.get("dataset")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise NeuropropError("export has no dataset in its metadata; re-export it with "
                             "'neuroprop export --target lava RUN_DIR'")
    try:
        return load_dataset(meta["name"], data_dir=data_dir,
                            val_fraction=meta["val_fraction"], seed=meta["seed"],
                            limit=meta.get("limit"),
                            classes=None if every_class else meta.get("classes"))
    except (KeyError, TypeError, ValueError):
        raise NeuropropError("export metadata names its dataset without its split settings; "
                             "re-export it with 'neuroprop export --target lava RUN_DIR'"
                             ) from None


def _samples(net: HardwareNetwork, split: str, limit: int | None,
             data_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    if limit is not None and limit <= 0:
        raise NeuropropError(f"--limit {limit}: expected a positive number of samples")
    part = getattr(export_dataset(net, data_dir), split)
    count = len(part) if limit is None else min(limit, len(part))
    if count == 0:
        raise NeuropropError(f"the {split} split is empty; choose another --split")
    return part.x[:count].numpy(), part.y[:count].numpy()


def run_export(export_dir: Path, split: str = "test", limit: int | None = None,
               use_float: bool = False, data_dir: str | Path | None = None,
               dense_model: str = "lava", per_sample: bool = False) -> dict:
    """Run ``export_dir`` on Lava, compare with the emulator and the float model, and
    write ``lava_summary.json`` into the export folder (checked writable first, so that a
    long run is not lost to a read-only folder)."""
    export_dir = Path(export_dir)
    if export_dir.is_file():
        raise NeuropropError(f"{export_dir} is a file; pass the export folder "
                             f"{export_dir.parent} (the one that holds {export_dir.name})")
    net = load_export(export_dir)
    try:
        tempfile.TemporaryFile(dir=export_dir).close()
    except OSError as error:
        raise NeuropropError(f"{export_dir} is not writable ({error.strerror}), and the run's "
                             "lava_summary.json goes there; copy the export to a writable "
                             "folder and run that") from None
    x_int, labels = _samples(net, split, limit, data_dir)
    lava = run_in_lava_env(export_dir, x_int, use_float=use_float, dense_model=dense_model,
                           per_sample=per_sample)
    if use_float:
        emulated = forward_float(net, x_int * net.input_scale)
        matches = np.isclose(lava.q, emulated, rtol=FLOAT_TOLERANCE,
                             atol=FLOAT_TOLERANCE).all(axis=1)
    else:
        emulated = forward_fixed(net, x_int)
        matches = (lava.q == emulated).all(axis=1)
    q_float = forward_float(net, x_int * net.input_scale)
    lava_actions = lava.q.argmax(axis=1)
    summary = {
        "split": split,
        "samples": int(len(labels)),
        "mode": "floating_pt" if use_float else "fixed_pt",
        "dense_model": None if use_float else dense_model,
        "method": lava.timing["method"],
        "accuracy": float((lava_actions == labels).mean()),
        "emulator_accuracy": float((emulated.argmax(axis=1) == labels).mean()),
        "float_accuracy": float((q_float.argmax(axis=1) == labels).mean()),
        "agreement_with_emulator": float(matches.mean()),
        "argmax_agreement_with_float": float((lava_actions == q_float.argmax(axis=1)).mean()),
        "samples_per_second": lava.timing["samples_per_second"],
        "seconds_build": lava.timing.get("seconds_build"),
        "seconds_run": lava.timing.get("seconds_run"),
    }
    try:
        write_json(export_dir / "lava_summary.json", summary)
    except NeuropropError as error:  # the disk filled up during the run: say what it measured
        raise NeuropropError(
            f"{error}; the run measured accuracy {summary['accuracy']:.4f} on Lava, "
            f"{summary['emulator_accuracy']:.4f} in the integer model, agreement "
            f"{summary['agreement_with_emulator']:.4f}") from None
    emulator_name = "numpy float model" if use_float else "integer model"
    summary["table"] = "\n".join([
        f"{summary['samples']} {split} samples of {net.metadata['dataset']['name']}:",
        f"  {'float (export weights)':<24}{summary['float_accuracy']:.4f}",
        f"  {emulator_name:<24}{summary['emulator_accuracy']:.4f}",
        f"  {'Lava ' + summary['mode']:<24}{summary['accuracy']:.4f}",
        f"  Lava == {emulator_name} on {100 * summary['agreement_with_emulator']:.2f} % of "
        f"samples; {summary['samples_per_second']:.0f} samples/s on Lava",
    ])
    return summary
