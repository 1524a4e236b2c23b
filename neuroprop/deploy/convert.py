"""``neuroprop convert``: a trained rate net as a spiking net, by threshold balancing.

A rate net of ReLU units without biases is positively homogeneous, and an
integrate-and-fire neuron (LIF with du = 1, dv = 0, reset to zero) driven by a constant
current a fires at a rate 1/(floor(vth/a) + 1), close to a / vth for a << vth. So each
ReLU layer l
becomes an IF layer whose rate stands for y_l / lambda_l, where lambda_l is a high
percentile (default: the maximum) of y_l on calibration samples of the training split
(data-based normalisation, Diehl et al. 2015; Rueckauer et al. 2017). With the weights
unchanged, layer l receives the current W_l y_{l-1} / lambda_{l-1} and needs

    vth_l = lambda_l / lambda_{l-1}          (lambda_0 = 1: the input is a constant current)

and the read-out (the leaky integrator li, du = 1, dv = 0: q = W r) gets its weights
times lambda_{N-1}, so that its Q-values approximate the rate net's. Batch-norm gains are
folded and dropout removed first (``Network.export_layers``); max pooling and hidden
linear layers have no spiking counterpart here and are refused.

The converted net is written as an ordinary spiking run directory (config.yaml, best.pt,
summary.json), so ``neuroprop evaluate`` treats it as any other spiking run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from hardware.emulator import forward_float
from neuroprop.deploy.export import calibration_inputs, hardware_network
from neuroprop.errors import NeuropropError
from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.training.checkpoint import (
    atomic_write_text,
    cannot_write,
    save_checkpoint,
    write_json,
)
from neuroprop.training.trainer import BEST, CONFIG, SUMMARY, Experiment, accuracy, load_trained

WEIGHT_TYPES = ("dense", "conv2d", "loccon2d")


def threshold_scales(exp: Experiment, samples: int, percentile: float) -> list[float]:
    """lambda_l per hidden weight layer: the ``percentile`` of its ReLU outputs over
    ``samples`` calibration inputs."""
    net = hardware_network(exp, Path("."))
    x = calibration_inputs(exp, samples).astype(np.float64) * net.input_scale
    _, activations = forward_float(net, x, return_activations=True)
    scales = []
    for index, layer in enumerate(net.layers[:-1]):
        if layer.type not in WEIGHT_TYPES:
            continue
        value = float(np.percentile(activations[index], percentile))
        if not value > 0:
            raise NeuropropError(
                f"layer {index} ({layer.type}) is silent on every calibration sample; "
                "convert a trained run or use more --calibration samples"
            )
        scales.append(value)
    return scales


def spiking_layers(exp: Experiment, scales: list[float]) -> tuple[list[dict], list[np.ndarray]]:
    """The ``network.layers`` section of the spiking net and its weights, in order."""
    raw_layers: list[dict[str, Any]] = []
    weights: list[np.ndarray] = []
    previous = 1.0
    exported = exp.network.export_layers()
    hidden = iter(scales)
    for index, layer in enumerate(exported):
        if layer["type"] == "maxpool2d":
            raise NeuropropError(f"layer {index}: maxpool2d has no spiking counterpart; "
                                 "convert a net without max pooling")
        if layer["type"] == "flatten":
            raw_layers.append({"type": "flatten"})
            continue
        if index == len(exported) - 1:
            raw_layers.append({"type": "output", "neuron": "li"})
            weights.append(layer["weight"] * previous)
            break
        if layer["neuron"]["kind"] != "relu":
            raise NeuropropError(f"layer {index}: a hidden {layer['neuron']['kind']} layer has "
                                 "no spiking counterpart; convert a net of relu layers")
        scale = next(hidden)
        entry: dict[str, Any] = {"type": layer["type"],
                                 "neuron": {"kind": "lif", "du": 1.0, "dv": 0.0,
                                            "vth": scale / previous}}
        if layer["type"] == "dense":
            entry["units"] = layer["out_shape"][0]
        else:
            entry.update(channels=layer["out_shape"][0], kernel=list(layer["kernel"]),
                         stride=list(layer["stride"]))
            if layer["type"] == "conv2d":
                entry["padding"] = list(layer["padding"])
        raw_layers.append(entry)
        weights.append(layer["weight"])
        previous = scale
    return raw_layers, weights


def convert_run(run_dir: Path, out: Path, timesteps: int, percentile: float = 100.0,
                calibration: int = 1000, data_dir: str | Path | None = None) -> dict:
    """Convert the best weights of the rate run ``run_dir`` into the spiking run ``out``;
    returns its summary (validation and test accuracy of the spiking net)."""
    if not 0 < percentile <= 100:
        raise NeuropropError(f"--percentile {percentile}: expected a number in (0, 100]")
    if timesteps < 1:
        raise NeuropropError(f"--timesteps {timesteps}: expected an integer T >= 1")
    out = Path(out)
    if out.exists():
        raise NeuropropError(f"{out} already exists; choose a new --out for the spiking run")
    exp = load_trained(run_dir, data_dir=data_dir)
    if exp.spec.spiking:
        raise NeuropropError(f"{run_dir} is a spiking run already; convert a rate run")
    scales = threshold_scales(exp, calibration, percentile)
    raw_layers, weights = spiking_layers(exp, scales)
    section = {"substrate": "spiking", "timesteps": timesteps, "encoding": "constant",
               "init": exp.spec.init.to_dict(), "layers": raw_layers}
    spec = parse_network(section, exp.spec.input_shape, exp.spec.num_classes)
    network = Network(spec, FeedbackOptions("tied", learn=True)).eval()
    weight_layers = [layer for layer in network.layers if hasattr(layer, "weight")]
    with torch.no_grad():
        for layer, weight in zip(weight_layers, weights, strict=True):
            layer.weight.copy_(torch.from_numpy(weight))
            layer.feedback_weight.copy_(layer.weight)
    config = exp.config.to_dict()
    config.update(network=spec.to_dict(), rule="brainprop", name=f"{exp.config.name}-spiking")
    try:
        out.mkdir(parents=True)
    except OSError as error:
        raise cannot_write(out, error) from None
    atomic_write_text(out / CONFIG, yaml.safe_dump(config, sort_keys=False))
    save_checkpoint(out / BEST, {"model": network.state_dict(), "network": spec.to_dict(),
                                 "epoch": 0, "converted_from": str(Path(run_dir).resolve())})
    batch = exp.config.training.eval_batch_size
    summary = {
        "status": "converted", "rule": "brainprop", "dataset": exp.dataset.name,
        "substrate": "spiking", "timesteps": timesteps, "converted_from": str(run_dir),
        "percentile": percentile, "calibration_samples": calibration,
        "thresholds": [entry["neuron"]["vth"] for entry in raw_layers
                       if entry["type"] in WEIGHT_TYPES],
        "rate_test_accuracy": accuracy(exp.network, exp.dataset.test, batch),
        "val_accuracy": accuracy(network, exp.dataset.val, batch),
        "test_accuracy": accuracy(network, exp.dataset.test, batch),
        "run_dir": str(out),
    }
    write_json(out / SUMMARY, summary)
    return summary
