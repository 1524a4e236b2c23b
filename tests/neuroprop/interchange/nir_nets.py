"""Small spiking nets and the step-by-step runs the interchange tests compare."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from neuroprop.network import Network, parse_network

T = 16
DT = 1e-4


def spiking_net(layers: list[dict[str, Any]], du: float = 1.0, dv: float = 0.0,
                vth: float = 1.0, std: float = 0.4, seed: int = 0,
                readout: dict[str, Any] | None = None) -> Network:
    """A spiking net on 8x8 single-channel inputs, 10 classes, T steps, random weights."""
    torch.manual_seed(seed)
    section = {"substrate": "spiking", "timesteps": T,
               "neuron": {"kind": "lif", "du": du, "dv": dv, "vth": vth},
               "init": {"distribution": "normal", "std": std},
               "layers": [*layers, {"type": "output", "neuron": readout or "li"}]}
    return Network(parse_network(section, (1, 8, 8), 10)).eval()


def inputs(samples: int = 100, seed: int = 1) -> torch.Tensor:
    return torch.rand(samples, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def neuroprop_spikes(network: Network, x: torch.Tensor) -> tuple[dict[int, torch.Tensor],
                                                                  torch.Tensor]:
    """The spikes (T, B, ...) of every lif layer, by layer index, and the Q-values."""
    for layer in network.layers:
        layer.start_trial()
    spikes: dict[int, list[torch.Tensor]] = {}
    for _ in range(network.spec.timesteps):
        s = x
        for index, layer in enumerate(network.layers):
            s = layer.step(s, False)
            if layer.spec.has_weights and layer.spec.neuron.kind == "lif":
                spikes.setdefault(index, []).append(s.clone())
    q = network.layers[-1].neuron.readout(s, network.spec.timesteps)
    return {index: torch.stack(steps) for index, steps in spikes.items()}, q


@torch.no_grad()
def module_spikes(module: torch.nn.Module, x: torch.Tensor, names: list[str],
                  stateful: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Run a module imported from NIR for T steps on the constant input ``x``: the outputs
    of the submodules ``names`` (spikes, T x B x ...) and the mean of its output."""
    recorded: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for name in names:
        module.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: recorded[name].append(
                out[0] if isinstance(out, tuple) else out))
    state, outputs = None, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            for _ in range(T):
                if stateful:
                    out, state = module(x, state)
                else:
                    out = module(x)
                outputs.append(out[0] if isinstance(out, tuple) else out)
        finally:
            logging.disable(logging.NOTSET)
    return ({name: torch.stack(steps) for name, steps in recorded.items()},
            torch.stack(outputs).mean(0))
