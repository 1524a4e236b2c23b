"""The network: a stack of local-learning layers built from a NetworkSpec.

``forward(x)`` maps inputs (B, C, H, W) to Q-values (B, num_classes): one pass for rate
nets; for spiking nets a trial of T steps, each step encoding the input (constant current
x, or Bernoulli spikes with P(s = 1) = x), and the output layer's leaky integrator read out
as q = v[T] / T. ``export_layers()`` gives the eval-mode network in the hardware layer's
conventions (hardware/graph.py). The learning rules read the layers' local signals
(``neuroprop.network.layers``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neuroprop.errors import NeuropropError
from neuroprop.network.layers import (
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    LocalGainNorm,
    LocallyConnected2d,
    MaxPool2d,
    WeightLayer,
    build_layer,
)
from neuroprop.network.spec import FeedbackOptions, NetworkSpec


class Network(nn.Module):
    """The torch network of a spec; ``feedback`` None builds it without feedback weights
    (for the autograd rules), otherwise every weight layer gets a feedback weight per
    FeedbackOptions."""

    def __init__(self, spec: NetworkSpec, feedback: FeedbackOptions | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.feedback_options = feedback
        self.layers = nn.ModuleList(build_layer(layer, spec.init, feedback, spec.precision)
                                    for layer in spec.layers)

    def forward(self, x: Tensor, cache: bool | None = None) -> Tensor:
        """Q-values (B, num_classes) of inputs (B, C, H, W).

        ``cache`` (default: the module's train mode) keeps what the local rule needs.
        """
        if tuple(x.shape[1:]) != self.spec.input_shape:
            raise NeuropropError(
                f"network input: expected samples of shape {self.spec.input_shape}, got "
                f"{tuple(x.shape[1:])}; check the dataset matches the config"
            )
        cache = self.training if cache is None else cache
        if not self.spec.spiking:
            for layer in self.layers:
                x = layer(x, cache)
            return x
        steps = self.spec.timesteps
        for layer in self.layers:
            layer.start_trial()
        for _ in range(steps):
            s = torch.bernoulli(x) if self.spec.encoding == "bernoulli" else x
            for layer in self.layers:
                s = layer.step(s, cache)
        for layer in self.layers:
            layer.end_trial(steps, cache)
        return self.layers[-1].neuron.readout(s, steps)

    def lowest_learning_layer(self) -> int:
        """Index of the lowest layer with a trainable parameter: the feedback pass stops
        there (nothing below it learns)."""
        for index, layer in enumerate(self.layers):
            if layer.learns:
                return index
        raise NeuropropError("the network has no trainable parameter; unfreeze a layer")

    def export_layers(self) -> list[dict[str, Any]]:
        """The eval-mode network as hardware layers (see hardware/graph.py).

        Dropout is removed; each batch-norm gain (gamma / sqrt(running_m2 + eps)) is folded
        into the input columns (dense), input channels (conv2d) or input-channel K-slices
        (loccon2d) of the next weight layer, passing through flatten and dropout, and
        through maxpool2d only when every gain is > 0 (max(g x) = g max(x) needs g > 0).
        Weights are float32 numpy arrays.
        """
        exported: list[dict[str, Any]] = []
        gain: Tensor | None = None  # pending gain: per channel on (C,H,W), per unit on (N,)
        with torch.no_grad():
            for index, layer in enumerate(self.layers):
                spec = layer.spec
                if isinstance(layer, LocalGainNorm):
                    layer_gain = layer.gain().double()
                    gain = layer_gain if gain is None else gain * layer_gain
                elif isinstance(layer, Dropout):
                    continue
                elif isinstance(layer, Flatten):
                    if gain is not None and len(spec.in_shape) == 3:
                        gain = gain.repeat_interleave(spec.in_shape[1] * spec.in_shape[2])
                    exported.append(_shape_layer(spec, "flatten"))
                elif isinstance(layer, MaxPool2d):
                    if gain is not None and not bool((gain > 0).all()):
                        raise NeuropropError(
                            f"network.layers[{index}]: cannot fold batch-norm gains <= 0 "
                            "through maxpool2d for export; put the batchnorm after the "
                            "maxpool2d"
                        )
                    exported.append({**_shape_layer(spec, "maxpool2d"), "kernel": spec.kernel,
                                     "stride": spec.stride})
                else:
                    exported.append(_weight_layer(layer, gain))
                    gain = None
        return exported

    def clear_cache(self) -> None:
        """Drop the cached forward pass (frees its activations)."""
        for layer in self.layers:
            layer.clear_cache()


def _shape_layer(spec: Any, layer_type: str) -> dict[str, Any]:
    return {"type": layer_type, "weight": None, "neuron": None, "kernel": None,
            "stride": None, "padding": None, "in_shape": tuple(spec.in_shape),
            "out_shape": tuple(spec.out_shape)}


def _weight_layer(layer: WeightLayer, gain: Tensor | None) -> dict[str, Any]:
    """A weight layer with the pending input gain folded into its weight."""
    spec = layer.spec
    weight = layer.weight.detach().double()
    entry = {"type": "dense", "neuron": spec.neuron.to_dict(), "kernel": None, "stride": None,
             "padding": None, "in_shape": tuple(spec.in_shape),
             "out_shape": tuple(spec.out_shape)}
    if isinstance(layer, Conv2d):
        entry.update(type="conv2d", kernel=spec.kernel, stride=spec.stride, padding=spec.padding)
        if gain is not None:
            weight = weight * gain.view(1, -1, 1, 1)
    elif isinstance(layer, LocallyConnected2d):
        entry.update(type="loccon2d", kernel=spec.kernel, stride=spec.stride, padding=(0, 0))
        if gain is not None:
            weight = weight * gain.repeat_interleave(spec.kernel[0] * spec.kernel[1])
    elif isinstance(layer, Dense) and gain is not None:
        weight = weight * gain.view(1, -1)
    entry["weight"] = np.ascontiguousarray(weight.cpu().numpy(), dtype=np.float32)
    return entry
