"""``neuroprop export --target lava``: a trained run to a quantised hardware export.

The torch network gives its float layers (batch-norm gains folded, dropout removed),
the hardware layer quantises them to Loihi fixed point from calibration samples of
the training split, checks that they fit on the chip, and writes the export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hardware.format import save_export
from hardware.graph import HardwareNetwork, Layer, lava_refusal
from hardware.quantize import quantise
from hardware.resources import check_fits, resource_report
from neuroprop.errors import NeuropropError
from neuroprop.network import Network
from neuroprop.training.trainer import Experiment, load_trained

LAYER_FIELDS = ("type", "in_shape", "out_shape", "neuron", "weight", "kernel", "stride",
                "padding")


def hardware_network(exp: Experiment, run_dir: Path,
                     network: Network | None = None) -> HardwareNetwork:
    """The float HardwareNetwork of a trained experiment (or of ``network``, another net
    on the same data: a converted one, or the run's net at another T), with its provenance.

    Spiking nets go with their trial length T; their input must be a constant current
    (the graded pixels at every step), as Loihi receives it here.
    """
    network = exp.network if network is None else network
    spec = network.spec
    if spec.spiking and spec.encoding != "constant":
        raise NeuropropError(
            f"{run_dir}: {spec.encoding} input encoding cannot be exported yet; train with "
            "network.encoding: constant"
        )
    layers = [Layer(**{key: entry[key] for key in LAYER_FIELDS if key in entry})
              for entry in network.export_layers()]
    config = exp.config
    return HardwareNetwork(
        input_shape=tuple(exp.dataset.input_shape),
        input_scale=float(exp.dataset.scale),
        layers=layers,
        substrate=spec.substrate,
        timesteps=spec.timesteps,
        metadata={
            "source_run": str(Path(run_dir).resolve()),
            "name": config.name,
            "rule": exp.rule.name,
            "dataset": {"name": config.dataset.name, "val_fraction": config.dataset.val_fraction,
                        "seed": config.training.seed, "limit": config.dataset.limit,
                        "classes": config.dataset.classes},
        },
    )


def calibration_inputs(exp: Experiment, samples: int) -> np.ndarray:
    """A seeded random subset of the training split, as raw unsigned integers."""
    if samples <= 0:
        raise NeuropropError(f"--calibration {samples}: expected a positive number of samples")
    train = exp.dataset.train
    generator = torch.Generator().manual_seed(exp.config.training.seed)
    index = torch.randperm(len(train), generator=generator)[:samples]
    return train.x[index].numpy()


def export_run(run_dir: Path, out: Path | None = None, data_dir: str | Path | None = None,
               calibration_samples: int = 1000) -> tuple[Path, str]:
    """Export the best weights of ``run_dir``; return the export folder and resource report."""
    exp = load_trained(run_dir, data_dir=data_dir)
    float_net = hardware_network(exp, run_dir)
    refusal = lava_refusal(float_net)
    if refusal:
        raise NeuropropError(f"{run_dir}: cannot be exported for Lava: {refusal}")
    net = quantise(float_net, calibration_inputs(exp, calibration_samples))
    report = resource_report(net)
    check_fits(report)
    out = Path(out) if out is not None else Path(run_dir) / "export-lava"
    return save_export(net, out), report.render()
