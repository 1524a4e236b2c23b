"""The network description: a validated, frozen form of the ``network:`` section of a config.

``parse_network(raw, input_shape, num_classes)`` checks every key, type and value and the
shape arithmetic of the whole stack, and raises ``NeuropropError`` with the key path of the
first problem (``network.layers[2].kernel: expected a positive integer, got 'x'``).

Network keys: ``substrate`` (rate | spiking), ``init``, ``layers``, ``neuron`` (the default
neuron of the hidden weight layers: relu for rate nets, lif for spiking ones),
``precision`` (float32 | bfloat16: the operands of the hidden weight layers' matrix
products and convolutions, see ``neuroprop.network.layers.WeightLayer``; default float32;
bfloat16 for rate nets only),
and for spiking nets ``timesteps`` (T >= 1, default 16) and ``encoding`` (constant |
bernoulli).

Layer types (shapes are C,H,W for spatial layers, (N,) after flattening):

- ``dense``: ``units``, ``neuron``.
- ``conv2d``: ``channels``, ``kernel``, ``stride`` (1), ``padding`` (0, zero padding),
  ``neuron``. out = floor((H + 2 padding - kernel) / stride) + 1.
- ``loccon2d`` (alias ``locallyconnected2d``): as conv2d with unshared weights per output
  position; valid padding only.
- ``batchnorm``: ``eps`` (1e-5), ``momentum`` (0.1); a per-unit (per-channel) gain. Rate only.
- ``dropout``: ``p`` in [0, 1).
- ``maxpool2d``: ``kernel``, ``stride`` (defaults to kernel). Rate only.
- ``flatten``.
- ``output``: bias-free, ``units`` = number of classes (may be omitted), ``neuron`` (linear
  for rate nets; the leaky integrator li for spiking nets); last, exactly once.

A ``neuron`` is a kind name or a mapping ``{kind: lif, du: 1.0, dv: 0.0, vth: 1.0}``
(``neuroprop.neurons``). ``kernel``, ``stride`` and ``padding`` take an integer or a pair
[h, w]. A ``flatten`` is inserted automatically before a ``dense`` or ``output`` layer that
follows a spatial layer; ``to_dict()`` writes it out explicitly, so
``parse_network(spec.to_dict(), ...)`` gives back an equal spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware.layers import weight_shape, window_output
from neuroprop.errors import NeuropropError
from neuroprop.neurons import NeuronSpec, default_neuron, parse_neuron

SUBSTRATES = ("rate", "spiking")
ENCODINGS = ("constant", "bernoulli")
DEFAULT_TIMESTEPS = 16
SPIKING_KEYS = ("timesteps", "encoding")
PRECISIONS = ("float32", "bfloat16")
NETWORK_KEYS = ("substrate", "init", "layers", "neuron", "precision", *SPIKING_KEYS)
WEIGHT_LAYER_TYPES = ("dense", "conv2d", "loccon2d", "output")
RATE_ONLY_LAYERS = {
    "batchnorm": "a batch statistic has no meaning per time step",
    "maxpool2d": "the max of binary spikes routes no usable feedback",
}
LAYER_ALIASES = {"locallyconnected2d": "loccon2d"}
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "dense": ("units", "neuron"),
    "conv2d": ("channels", "kernel", "stride", "padding", "neuron"),
    "loccon2d": ("channels", "kernel", "stride", "padding", "neuron"),
    "batchnorm": ("eps", "momentum"),
    "dropout": ("p",),
    "maxpool2d": ("kernel", "stride"),
    "flatten": (),
    "output": ("units", "neuron"),
}
DEFAULT_INIT = {"distribution": "normal", "std": 0.005}
INIT_KEYS = {"normal": "std", "uniform": "limit"}

MAX_LAYER_OUTPUTS = 2**24
"""The most outputs (units, or channels x height x width) one layer may have per sample:
16.8 million, 16 times a whole Loihi 2 chip's neurons. Larger sizes are typos (units:
10**12) that would otherwise fail in the memory allocator."""
MAX_LAYER_WEIGHTS = 2**28
"""The most weights one layer may hold: 268 million, 1 GiB in float32 (and as much again
for its feedback weights and gradients)."""

Shape = tuple[int, ...]
Pair = tuple[int, int]


@dataclass(frozen=True)
class FeedbackOptions:
    """The feedback weights B_l of every weight layer (same shape as the forward W_l).

    ``init``: "tied" (B_l starts equal to W_l) or "random" (an independent draw from the
    network's init). ``learn``: update B_l with the same local update as W_l (tied weights
    then stay exactly equal); False freezes them (feedback alignment when random).
    """

    init: str = "tied"
    learn: bool = True

    @classmethod
    def parse(cls, raw: Any, path: str) -> FeedbackOptions:
        """Validate a ``{init: tied|random, learn: true|false}`` mapping at ``path``."""
        if not isinstance(raw, dict):
            raise NeuropropError(
                f"{path}: expected a mapping like {{init: tied, learn: true}}, got {raw!r}"
            )
        _check_keys(raw, ("init", "learn"), path)
        init = raw.get("init", cls.init)
        if init not in ("tied", "random"):
            raise NeuropropError(f"{path}.init: expected 'tied' or 'random', got {init!r}")
        learn = raw.get("learn", cls.learn)
        if not isinstance(learn, bool):
            raise NeuropropError(f"{path}.learn: expected true or false, got {learn!r}")
        return cls(init=init, learn=learn)

    def to_dict(self) -> dict[str, Any]:
        return {"init": self.init, "learn": self.learn}


@dataclass(frozen=True)
class InitSpec:
    """Weight initialisation: N(0, std^2) ("normal") or U(-limit, limit) ("uniform")."""

    distribution: str
    scale: float

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, INIT_KEYS[self.distribution]: self.scale}


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """One layer: its type and the shapes it maps (batch axis excluded)."""

    type: str
    in_shape: Shape
    out_shape: Shape

    @property
    def has_weights(self) -> bool:
        return self.type in WEIGHT_LAYER_TYPES

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}


@dataclass(frozen=True, kw_only=True)
class WeightLayerSpec(LayerSpec):
    """A synapse layer (a = W * y_pre, no bias) followed by its neuron."""

    neuron: NeuronSpec

    @property
    def kernel_pair(self) -> Pair | None:
        return getattr(self, "kernel", None)

    @property
    def weight_shape(self) -> Shape:
        kind = "dense" if self.type == "output" else self.type
        return weight_shape(kind, self.in_shape, self.out_shape, self.kernel_pair)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self._fields(), "neuron": _neuron_to_raw(self.neuron)}

    def _fields(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, kw_only=True)
class DenseSpec(WeightLayerSpec):
    units: int

    def _fields(self) -> dict[str, Any]:
        return {"units": self.units}


@dataclass(frozen=True, kw_only=True)
class OutputSpec(DenseSpec):
    """The bias-free output layer: one Q-value per class."""


@dataclass(frozen=True, kw_only=True)
class Conv2dSpec(WeightLayerSpec):
    channels: int
    kernel: Pair
    stride: Pair
    padding: Pair

    def _fields(self) -> dict[str, Any]:
        return {"channels": self.channels, "kernel": _pair_to_raw(self.kernel),
                "stride": _pair_to_raw(self.stride), "padding": _pair_to_raw(self.padding)}


@dataclass(frozen=True, kw_only=True)
class LocCon2dSpec(WeightLayerSpec):
    """Locally connected 2d: weight (L, O, C*kh*kw), L = out_h*out_w positions row-major."""

    channels: int
    kernel: Pair
    stride: Pair

    @property
    def positions(self) -> int:
        return self.out_shape[1] * self.out_shape[2]

    def _fields(self) -> dict[str, Any]:
        return {"channels": self.channels, "kernel": _pair_to_raw(self.kernel),
                "stride": _pair_to_raw(self.stride)}


@dataclass(frozen=True, kw_only=True)
class BatchNormSpec(LayerSpec):
    """A local per-unit gain y = gamma * x / sqrt(m2 + eps) (see neuroprop.network.layers)."""

    eps: float
    momentum: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "eps": self.eps, "momentum": self.momentum}


@dataclass(frozen=True, kw_only=True)
class DropoutSpec(LayerSpec):
    p: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "p": self.p}


@dataclass(frozen=True, kw_only=True)
class MaxPool2dSpec(LayerSpec):
    kernel: Pair
    stride: Pair

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "kernel": _pair_to_raw(self.kernel),
            "stride": _pair_to_raw(self.stride),
        }


@dataclass(frozen=True, kw_only=True)
class FlattenSpec(LayerSpec):
    pass


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network: substrate, weight init, the layer stack with its shapes, the
    ``precision`` of the synapses' products and, for spiking nets, the trial length
    ``timesteps`` and the input ``encoding``."""

    substrate: str
    init: InitSpec
    layers: tuple[LayerSpec, ...]
    input_shape: Shape
    num_classes: int
    timesteps: int = 1
    encoding: str = "constant"
    precision: str = "float32"

    @property
    def spiking(self) -> bool:
        return self.substrate == "spiking"

    def to_dict(self) -> dict[str, Any]:
        """The ``network:`` section that parses back to this spec (with the same shapes)."""
        section: dict[str, Any] = {
            "substrate": self.substrate,
            "init": self.init.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if self.spiking:
            section.update(timesteps=self.timesteps, encoding=self.encoding)
        if self.precision != "float32":
            section["precision"] = self.precision
        return section


def parse_network(
    raw: Any, input_shape: tuple[int, int, int], num_classes: int
) -> NetworkSpec:
    """Validate the ``network:`` section for inputs (C, H, W) and ``num_classes`` outputs."""
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(_is_int(n) and n > 0 for n in input_shape):
        raise NeuropropError(
            f"network input shape: expected (channels, height, width), got {input_shape!r}"
        )
    if not _is_int(num_classes) or num_classes < 2:
        raise NeuropropError(f"network: expected at least 2 classes, got {num_classes!r}")
    section = _mapping(raw, "network")
    _check_keys(section, NETWORK_KEYS, "network")
    substrate = section.get("substrate", "rate")
    if substrate not in SUBSTRATES:
        raise NeuropropError(
            f"network.substrate: expected one of {', '.join(SUBSTRATES)}, got {substrate!r}"
        )
    precision = section.get("precision", "float32")
    if precision not in PRECISIONS:
        raise NeuropropError(f"network.precision: expected one of {', '.join(PRECISIONS)}, "
                             f"got {precision!r}")
    if precision != "float32" and substrate == "spiking":
        raise NeuropropError(f"network.precision: {precision} is for rate nets only (near "
                             "the threshold its rounding moves spikes, so the spike trains "
                             "change); use float32 or substrate rate")
    timesteps, encoding = _parse_time(section, substrate)
    hidden_neuron = (parse_neuron(section["neuron"], "network.neuron", substrate, "hidden")
                     if "neuron" in section else default_neuron(substrate, "hidden"))
    init = _parse_init(section.get("init", DEFAULT_INIT), "network.init")
    if "layers" not in section:
        raise NeuropropError("network.layers: missing; give a list of layers ending in "
                             "{type: output}")
    raw_layers = section["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise NeuropropError(
            f"network.layers: expected a non-empty list of layers, got {raw_layers!r}"
        )
    layers: list[LayerSpec] = []
    shape: Shape = input_shape
    for index, raw_layer in enumerate(raw_layers):
        path = f"network.layers[{index}]"
        layer_dict = _renamed_activation(_mapping(raw_layer, path), path)
        layer_type = _layer_type(layer_dict, path)
        if layers and layers[-1].type == "output":
            raise NeuropropError(f"{path}: the output layer must be the last layer; "
                                 "remove the layers after it")
        if substrate == "spiking" and layer_type in RATE_ONLY_LAYERS:
            raise NeuropropError(
                f"{path}.type: {layer_type} is not supported in spiking nets "
                f"({RATE_ONLY_LAYERS[layer_type]}); remove it or use substrate rate"
            )
        if layer_type in ("dense", "output") and len(shape) == 3:
            layers.append(FlattenSpec(type="flatten", in_shape=shape,
                                      out_shape=(_product(shape),)))
            shape = layers[-1].out_shape
        neuron = None
        if layer_type in WEIGHT_LAYER_TYPES:
            role = "output" if layer_type == "output" else "hidden"
            neuron = (parse_neuron(layer_dict["neuron"], f"{path}.neuron", substrate, role)
                      if "neuron" in layer_dict else
                      hidden_neuron if role == "hidden" else default_neuron(substrate, role))
        layer = _parse_layer(layer_type, layer_dict, shape, num_classes, path, neuron)
        _check_size(layer, path)
        layers.append(layer)
        shape = layer.out_shape
    if layers[-1].type != "output":
        raise NeuropropError("network.layers: the last layer must be {type: output}; add it")
    return NetworkSpec(
        substrate=substrate,
        init=init,
        layers=tuple(layers),
        input_shape=input_shape,
        num_classes=num_classes,
        timesteps=timesteps,
        encoding=encoding,
        precision=precision,
    )


def _renamed_activation(layer: dict, path: str) -> dict:
    """Networks written before neurons were parts said ``activation: relu``; it reads as
    ``neuron: relu`` (both at once is refused)."""
    if "activation" not in layer:
        return layer
    if "neuron" in layer:
        raise NeuropropError(f"{path}.activation: the older name of 'neuron'; give only "
                             "neuron")
    renamed = {key: value for key, value in layer.items() if key != "activation"}
    renamed["neuron"] = layer["activation"]
    return renamed


def _parse_time(section: dict, substrate: str) -> tuple[int, str]:
    """``timesteps`` and ``encoding``: spiking nets only (rate nets take one step)."""
    if substrate != "spiking":
        for key in SPIKING_KEYS:
            if key in section:
                raise NeuropropError(f"network.{key}: only spiking nets have it; remove it "
                                     "or set network.substrate: spiking")
        return 1, "constant"
    timesteps = section.get("timesteps", DEFAULT_TIMESTEPS)
    if not _is_int(timesteps) or timesteps < 1:
        raise NeuropropError(f"network.timesteps: expected an integer T >= 1, got {timesteps!r}")
    encoding = section.get("encoding", "constant")
    if encoding not in ENCODINGS:
        raise NeuropropError(f"network.encoding: expected one of {', '.join(ENCODINGS)}, "
                             f"got {encoding!r}")
    return timesteps, encoding


def _parse_init(raw: Any, path: str) -> InitSpec:
    section = _mapping(raw, path)
    distribution = section.get("distribution")
    if distribution not in INIT_KEYS:
        raise NeuropropError(
            f"{path}.distribution: expected 'normal' or 'uniform', got {distribution!r}"
        )
    scale_key = INIT_KEYS[distribution]
    _check_keys(section, ("distribution", scale_key), path)
    if scale_key not in section:
        raise NeuropropError(f"{path}.{scale_key}: missing; {distribution} init needs it")
    scale = _positive_float(section[scale_key], f"{path}.{scale_key}")
    return InitSpec(distribution=distribution, scale=scale)


def _layer_type(layer: dict, path: str) -> str:
    if "type" not in layer:
        raise NeuropropError(f"{path}.type: missing; one of {', '.join(LAYER_KEYS)}")
    layer_type = layer["type"]
    layer_type = LAYER_ALIASES.get(layer_type, layer_type)
    if layer_type not in LAYER_KEYS:
        raise NeuropropError(
            f"{path}.type: unknown layer type {layer['type']!r}; "
            f"use one of {', '.join(LAYER_KEYS)} (or locallyconnected2d)"
        )
    _check_keys(layer, ("type", *LAYER_KEYS[layer_type]), path)
    return layer_type


def _parse_layer(
    layer_type: str, layer: dict, shape: Shape, num_classes: int, path: str,
    neuron: NeuronSpec | None,
) -> LayerSpec:
    if layer_type in ("conv2d", "loccon2d", "maxpool2d") and len(shape) != 3:
        raise NeuropropError(
            f"{path}: {layer_type} needs a spatial (C, H, W) input but gets {shape}; "
            "move it before the flatten/dense layers"
        )
    if layer_type == "dense":
        units = _positive_int(_required(layer, "units", path), f"{path}.units")
        return DenseSpec(type="dense", in_shape=shape, out_shape=(units,), units=units,
                         neuron=neuron)
    if layer_type == "output":
        units = layer.get("units", num_classes)
        if not _is_int(units) or units != num_classes:
            raise NeuropropError(
                f"{path}.units: the output needs one unit per class ({num_classes}), "
                f"got {units!r}; remove the key or set it to {num_classes}"
            )
        return OutputSpec(type="output", in_shape=shape, out_shape=(units,), units=units,
                          neuron=neuron)
    if layer_type in ("conv2d", "loccon2d"):
        channels = _positive_int(_required(layer, "channels", path), f"{path}.channels")
        kernel = _pair(_required(layer, "kernel", path), f"{path}.kernel")
        stride = _pair(layer.get("stride", 1), f"{path}.stride")
        padding = _pair(layer.get("padding", 0), f"{path}.padding", minimum=0)
        if layer_type == "loccon2d" and padding != (0, 0):
            raise NeuropropError(
                f"{path}.padding: loccon2d supports valid padding only; remove the key or set 0"
            )
        out_shape = (channels, *_window_output(shape, kernel, stride, padding, path))
        if layer_type == "loccon2d":
            return LocCon2dSpec(type="loccon2d", in_shape=shape, out_shape=out_shape,
                                channels=channels, kernel=kernel, stride=stride, neuron=neuron)
        return Conv2dSpec(type="conv2d", in_shape=shape, out_shape=out_shape,
                          channels=channels, kernel=kernel, stride=stride, padding=padding,
                          neuron=neuron)
    if layer_type == "maxpool2d":
        kernel = _pair(_required(layer, "kernel", path), f"{path}.kernel")
        stride = _pair(layer.get("stride", list(kernel)), f"{path}.stride")
        out_hw = _window_output(shape, kernel, stride, (0, 0), path)
        return MaxPool2dSpec(type="maxpool2d", in_shape=shape, out_shape=(shape[0], *out_hw),
                             kernel=kernel, stride=stride)
    if layer_type == "batchnorm":
        eps = _positive_float(layer.get("eps", 1e-5), f"{path}.eps")
        momentum = _fraction(layer.get("momentum", 0.1), f"{path}.momentum", upper_open=False)
        if momentum == 0.0:
            raise NeuropropError(f"{path}.momentum: expected a number in (0, 1], got 0")
        return BatchNormSpec(type="batchnorm", in_shape=shape, out_shape=shape, eps=eps,
                             momentum=momentum)
    if layer_type == "dropout":
        p = _fraction(_required(layer, "p", path), f"{path}.p", upper_open=True)
        return DropoutSpec(type="dropout", in_shape=shape, out_shape=shape, p=p)
    return FlattenSpec(type="flatten", in_shape=shape, out_shape=(_product(shape),))


def _check_size(layer: LayerSpec, path: str) -> None:
    """Refuse a layer above MAX_LAYER_OUTPUTS or MAX_LAYER_WEIGHTS, naming the key."""
    key = "units" if layer.type in ("dense", "output") else "channels"
    outputs = _product(layer.out_shape)
    if outputs > MAX_LAYER_OUTPUTS:
        raise NeuropropError(
            f"{path}.{key}: the layer would have {outputs:,} outputs per sample, more than "
            f"{MAX_LAYER_OUTPUTS:,} (16 Loihi 2 chips); use fewer {key}"
        )
    if isinstance(layer, WeightLayerSpec) and _product(layer.weight_shape) > MAX_LAYER_WEIGHTS:
        raise NeuropropError(
            f"{path}.{key}: the layer would hold {_product(layer.weight_shape):,} weights, "
            f"more than {MAX_LAYER_WEIGHTS:,} (1 GiB); use fewer {key} or a smaller input"
        )


def _window_output(shape: Shape, kernel: Pair, stride: Pair, padding: Pair, path: str) -> Pair:
    """The output size per spatial axis (``hardware.layers.window_output``), or a one-line
    error when the kernel does not fit."""
    for axis, size in enumerate(shape[1:]):
        padded = size + 2 * padding[axis]
        if kernel[axis] > padded:
            raise NeuropropError(
                f"{path}.kernel: kernel {kernel[axis]} is larger than the "
                f"{'padded ' if padding[axis] else ''}input {padded} "
                f"(input shape {shape}); use a smaller kernel or more padding"
            )
    return (window_output(shape[1], kernel[0], stride[0], padding[0]),
            window_output(shape[2], kernel[1], stride[1], padding[1]))


def _neuron_to_raw(neuron: NeuronSpec) -> str | dict[str, Any]:
    raw = neuron.to_dict()
    return raw["kind"] if len(raw) == 1 else raw


def _mapping(raw: Any, path: str) -> dict:
    if not isinstance(raw, dict):
        raise NeuropropError(f"{path}: expected a mapping, got {raw!r}")
    return raw


def _check_keys(section: dict, allowed: tuple[str, ...], path: str) -> None:
    for key in section:
        if key not in allowed:
            raise NeuropropError(
                f"{path}.{key}: unknown key; allowed keys are {', '.join(allowed)}"
            )


def _required(layer: dict, key: str, path: str) -> Any:
    if key not in layer:
        raise NeuropropError(f"{path}.{key}: missing; {layer.get('type')} layers need it")
    return layer[key]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: Any, path: str) -> int:
    if not _is_int(value) or value < 1:
        raise NeuropropError(f"{path}: expected a positive integer, got {value!r}")
    return value


def _pair(value: Any, path: str, minimum: int = 1) -> Pair:
    kind = "positive" if minimum == 1 else "non-negative"
    items = list(value) if isinstance(value, list | tuple) else [value, value]
    if len(items) != 2 or not all(_is_int(item) and item >= minimum for item in items):
        raise NeuropropError(
            f"{path}: expected a {kind} integer or a pair [h, w] of them, got {value!r}"
        )
    return items[0], items[1]


def _pair_to_raw(pair: Pair) -> int | list[int]:
    return pair[0] if pair[0] == pair[1] else list(pair)


def _positive_float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise NeuropropError(f"{path}: expected a positive number, got {value!r}")
    return float(value)


def _fraction(value: Any, path: str, upper_open: bool) -> float:
    interval = "[0, 1)" if upper_open else "[0, 1]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NeuropropError(f"{path}: expected a number in {interval}, got {value!r}")
    if not (0 <= value < 1 if upper_open else 0 <= value <= 1):
        raise NeuropropError(f"{path}: expected a number in {interval}, got {value!r}")
    return float(value)


def _product(shape: Shape) -> int:
    result = 1
    for size in shape:
        result *= size
    return result
