"""The export format: a versioned JSON manifest plus one ``.npz`` of arrays.

An export is a directory::

    manifest.json   what the network is (see below), with the arrays' SHA-256
    arrays.npz      float32 weights and int16 Loihi weight mantissas, one entry each

``manifest.json`` (format "neuroprop-export", version 1)::

    {"format": "neuroprop-export", "version": 1,
     "hardware_version": "0.1.0", "created": "2025-01-01T00:00:00+00:00",
     "substrate": "rate",
     "input": {"shape": [C, H, W], "bits": 8, "scale": 0.0039},
     "neuron": {...}, "learning": null | {...}, "metadata": {...},
     "layers": [{"name": "layer0_conv2d", "type": "conv2d",
                 "in_shape": [...], "out_shape": [...], "activation": "relu",
                 "kernel": [kh, kw] | null, "stride": [sh, sw] | null,
                 "padding": [ph, pw] | null, "weight_exp": -7,
                 "arrays": {"weight": "layer0_conv2d.weight" | null,
                            "weight_int": "layer0_conv2d.weight_int" | null}}, ...],
     "arrays": {"file": "arrays.npz", "sha256": "..."}}

Writing is atomic: everything goes into a temporary directory beside the target,
which then replaces the old export in two renames, so a failed write leaves an
old export untouched. Loading checks the format name, the version, the checksum,
every array's presence, dtype and shape, the layer chain and the Loihi weight
rules, and refuses a bad export with one ``HardwareError`` line.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hardware import __version__
from hardware.errors import HardwareError
from hardware.graph import ACTIVATIONS, LAYER_TYPES, HardwareNetwork, Layer
from hardware.loihi import INPUT_BITS, check_weight_exponent, check_weight_mantissas

FORMAT_NAME = "neuroprop-export"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"
SUBSTRATES = ("rate",)

_REEXPORT = "re-export the network with this neuroprop (neuroprop export ...)"


def layer_name(index: int, layer: Layer) -> str:
    """The name a layer has in a manifest and in messages, e.g. ``layer2_dense``."""
    return f"layer{index}_{layer.type}"


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one axis:
    ``floor((size + 2 * padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def expected_weight_shape(layer: Layer) -> tuple[int, ...]:
    """The weight shape a layer's in/out shapes and kernel imply (layouts in ``graph.py``)."""
    if layer.type == "dense":
        return (layer.out_shape[0], layer.in_shape[0])
    kh, kw = layer.kernel
    channels = layer.in_shape[0]
    out_channels, out_h, out_w = layer.out_shape
    if layer.type == "conv2d":
        return (out_channels, channels, kh, kw)
    if layer.type == "loccon2d":
        return (out_h * out_w, out_channels, channels * kh * kw)
    raise ValueError(f"{layer.type} has no weights")


def validate_network(net: HardwareNetwork, source: str = "network") -> None:
    """Check that ``net`` is a consistent feed-forward chain that Loihi can hold.

    Checks: known layer types and activations, each layer's ``in_shape`` equal to the
    previous ``out_shape`` (the first to the input shape), output shapes implied by
    kernel/stride/padding, weight shapes, a linear dense output layer, and, for a
    quantised network, the Loihi mantissa and exponent rules of ``hardware.loihi``.
    Raises ``HardwareError`` naming ``source`` and the layer.
    """
    if net.substrate not in SUBSTRATES:
        raise HardwareError(
            f"{source}: unknown substrate {net.substrate!r} (supported: {', '.join(SUBSTRATES)}); "
            f"{_REEXPORT}"
        )
    if not 1 <= int(net.input_bits) <= INPUT_BITS:
        raise HardwareError(
            f"{source}: input_bits {net.input_bits} is outside 1..{INPUT_BITS} (Loihi inputs "
            f"are {INPUT_BITS}-bit at most); {_REEXPORT}"
        )
    if not (math.isfinite(net.input_scale) and net.input_scale > 0):
        raise HardwareError(
            f"{source}: input scale {net.input_scale} must be a positive number; {_REEXPORT}"
        )
    if not net.layers:
        raise HardwareError(f"{source}: the network has no layers; {_REEXPORT}")
    previous = tuple(net.input_shape)
    for index, layer in enumerate(net.layers):
        where = f"{source}: {layer_name(index, layer)}"
        if layer.type not in LAYER_TYPES:
            raise HardwareError(
                f"{where}: unknown layer type {layer.type!r} (known: {', '.join(LAYER_TYPES)}); "
                f"{_REEXPORT}"
            )
        if layer.activation not in ACTIVATIONS:
            raise HardwareError(
                f"{where}: unknown activation {layer.activation!r} (known: "
                f"{', '.join(ACTIVATIONS)}); {_REEXPORT}"
            )
        if tuple(layer.in_shape) != previous:
            raise HardwareError(
                f"{where}: in_shape {tuple(layer.in_shape)} does not match the previous output "
                f"{previous}; {_REEXPORT}"
            )
        _check_layer_shapes(layer, where)
        if layer.has_weights:
            _check_weights(layer, where)
        elif layer.weight is not None or layer.weight_int is not None:
            raise HardwareError(f"{where}: a {layer.type} layer cannot carry weights; {_REEXPORT}")
        previous = tuple(layer.out_shape)
    last = net.layers[-1]
    if last.type != "dense" or last.activation != "linear":
        raise HardwareError(
            f"{source}: the last layer is a {last.activation} {last.type}, but the Q-value "
            f"output must be a linear dense layer; {_REEXPORT}"
        )


def _check_layer_shapes(layer: Layer, where: str) -> None:
    in_shape, out_shape = tuple(layer.in_shape), tuple(layer.out_shape)
    if layer.type == "flatten":
        if out_shape != (math.prod(in_shape),):
            raise HardwareError(
                f"{where}: flatten of {in_shape} gives ({math.prod(in_shape)},), not {out_shape}; "
                f"{_REEXPORT}"
            )
        return
    if layer.type == "dense":
        if len(in_shape) != 1 or len(out_shape) != 1:
            raise HardwareError(
                f"{where}: a dense layer needs 1-d shapes, got {in_shape} -> {out_shape} "
                f"(add a flatten layer before it); {_REEXPORT}"
            )
        return
    for name in ("kernel", "stride"):
        value = getattr(layer, name)
        if value is None or len(value) != 2 or min(value) < 1:
            raise HardwareError(
                f"{where}: {name} must be two positive integers, got {value}; {_REEXPORT}"
            )
    padding = tuple(layer.padding) if layer.padding is not None else (0, 0)
    if len(padding) != 2 or min(padding) < 0:
        raise HardwareError(
            f"{where}: padding must be two integers >= 0, got {padding}; {_REEXPORT}"
        )
    if layer.type in ("loccon2d", "maxpool2d") and padding != (0, 0):
        raise HardwareError(
            f"{where}: {layer.type} supports no padding (valid only), got {padding}; {_REEXPORT}"
        )
    if len(in_shape) != 3 or len(out_shape) != 3:
        raise HardwareError(
            f"{where}: {layer.type} needs (C, H, W) shapes, got {in_shape} -> {out_shape}; "
            f"{_REEXPORT}"
        )
    spatial = tuple(
        conv_output_size(size, k, s, p)
        for size, k, s, p in zip(in_shape[1:], layer.kernel, layer.stride, padding, strict=True)
    )
    channels_ok = layer.type != "maxpool2d" or out_shape[0] == in_shape[0]
    if out_shape[1:] != spatial or min(spatial) < 1 or not channels_ok:
        expected = (in_shape[0] if layer.type == "maxpool2d" else out_shape[0], *spatial)
        raise HardwareError(
            f"{where}: input {in_shape} with kernel {tuple(layer.kernel)}, stride "
            f"{tuple(layer.stride)}, padding {padding} gives {expected}, not {out_shape}; "
            f"{_REEXPORT}"
        )


def _check_weights(layer: Layer, where: str) -> None:
    expected = expected_weight_shape(layer)
    if layer.weight is None:
        raise HardwareError(f"{where}: the {layer.type} layer has no float weights; {_REEXPORT}")
    for name in ("weight", "weight_int"):
        array = getattr(layer, name)
        if array is not None and tuple(array.shape) != expected:
            raise HardwareError(
                f"{where}: {name} has shape {tuple(array.shape)}, expected {expected} from its "
                f"in/out shapes and kernel; {_REEXPORT}"
            )
    if not np.all(np.isfinite(layer.weight)):
        raise HardwareError(f"{where}: weight holds NaN or infinite values; retrain or {_REEXPORT}")
    if layer.weight_int is not None:
        if not np.issubdtype(layer.weight_int.dtype, np.integer):
            raise HardwareError(
                f"{where}: weight_int has dtype {layer.weight_int.dtype}, expected integers; "
                f"{_REEXPORT}"
            )
        check_weight_mantissas(layer.weight_int, where)
        check_weight_exponent(layer.weight_exp, where)


def _json_default(value: object) -> object:
    """Turn numpy scalars and arrays in free-form dicts into JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _manifest_and_arrays(net: HardwareNetwork) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for index, layer in enumerate(net.layers):
        name = layer_name(index, layer)
        keys: dict[str, str | None] = {"weight": None, "weight_int": None}
        if layer.weight is not None:
            keys["weight"] = f"{name}.weight"
            arrays[keys["weight"]] = np.asarray(layer.weight, dtype=np.float32)
        if layer.weight_int is not None:
            keys["weight_int"] = f"{name}.weight_int"
            arrays[keys["weight_int"]] = np.asarray(layer.weight_int, dtype=np.int16)
        layers.append(
            {
                "name": name,
                "type": layer.type,
                "in_shape": [int(v) for v in layer.in_shape],
                "out_shape": [int(v) for v in layer.out_shape],
                "activation": layer.activation,
                "kernel": _int_pair(layer.kernel),
                "stride": _int_pair(layer.stride),
                "padding": _int_pair(layer.padding),
                "weight_exp": int(layer.weight_exp),
                "arrays": keys,
            }
        )
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "hardware_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "substrate": net.substrate,
        "input": {
            "shape": [int(v) for v in net.input_shape],
            "bits": int(net.input_bits),
            "scale": float(net.input_scale),
        },
        "neuron": net.neuron,
        "learning": net.learning,
        "metadata": net.metadata,
        "layers": layers,
        "arrays": {"file": ARRAYS_FILE, "sha256": None},
    }
    return manifest, arrays


def _int_pair(value: tuple[int, int] | None) -> list[int] | None:
    return None if value is None else [int(v) for v in value]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_export(net: HardwareNetwork, out_dir: str | Path) -> Path:
    """Write ``net`` as an export directory at ``out_dir`` (atomically) and return its path.

    The network is validated first. An existing export at ``out_dir`` is replaced only
    once the new one is complete; a directory there that is not an export is refused.
    """
    target = Path(out_dir).expanduser().resolve()
    validate_network(net, source=str(target))
    if target.exists() and not target.is_dir():
        raise HardwareError(f"{target}: exists and is not a directory; choose another export path")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
        raise HardwareError(
            f"{target}: is a non-empty directory without {MANIFEST_FILE}, not an export; "
            f"choose another export path or remove it"
        )
    manifest, arrays = _manifest_and_arrays(net)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        np.savez(staging / ARRAYS_FILE, **arrays)
        manifest["arrays"]["sha256"] = _sha256(staging / ARRAYS_FILE)
        try:
            text = json.dumps(manifest, indent=2, default=_json_default, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise HardwareError(
                f"{target}: metadata, neuron or learning parameters are not JSON-serialisable "
                f"({error}); pass plain numbers, strings, lists and dicts"
            ) from None
        (staging / MANIFEST_FILE).write_text(text + "\n")
        _replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _replace_directory(staging: Path, target: Path) -> None:
    """Move the complete ``staging`` directory to ``target``, keeping the old one until then."""
    if not target.exists():
        staging.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    retired.rmdir()
    target.rename(retired)
    try:
        staging.rename(target)
    except BaseException:
        retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def load_export(path: str | Path) -> HardwareNetwork:
    """Read and validate an export directory (or its ``manifest.json``) into a network."""
    directory = Path(path).expanduser()
    if directory.name == MANIFEST_FILE:
        directory = directory.parent
    manifest_path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise HardwareError(
            f"{directory}: no such export directory; check the path or export first"
        )
    if not manifest_path.is_file():
        raise HardwareError(
            f"{manifest_path}: missing, so {directory} is not an export; {_REEXPORT}"
        )
    manifest = _read_manifest(manifest_path)
    arrays = _read_arrays(directory, manifest, manifest_path)
    net = _network_from(manifest, arrays, manifest_path)
    validate_network(net, source=str(manifest_path))
    return net


def _read_manifest(manifest_path: Path) -> dict:
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HardwareError(
            f"{manifest_path}: unreadable JSON ({error}); the export is damaged, {_REEXPORT}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise HardwareError(
            f"{manifest_path}: format is {found!r}, not {FORMAT_NAME!r}; point to a neuroprop "
            f"export or {_REEXPORT}"
        )
    version = manifest.get("version")
    if version != FORMAT_VERSION:
        raise HardwareError(
            f"{manifest_path}: export format version {version!r} is not supported (this neuroprop "
            f"reads version {FORMAT_VERSION}); {_REEXPORT}"
        )
    for key in ("substrate", "input", "layers", "arrays"):
        if key not in manifest:
            raise HardwareError(f"{manifest_path}: the manifest has no {key!r} entry; {_REEXPORT}")
    return manifest


def _read_arrays(directory: Path, manifest: dict, manifest_path: Path) -> dict[str, np.ndarray]:
    entry = manifest["arrays"]
    file_name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(file_name, str) or Path(file_name).name != file_name:
        raise HardwareError(f"{manifest_path}: bad arrays entry {entry!r}; {_REEXPORT}")
    arrays_path = directory / file_name
    if not arrays_path.is_file():
        raise HardwareError(f"{arrays_path}: missing; the export is incomplete, {_REEXPORT}")
    if _sha256(arrays_path) != entry.get("sha256"):
        raise HardwareError(
            f"{arrays_path}: checksum mismatch with {MANIFEST_FILE} (corrupt or modified "
            f"arrays); {_REEXPORT}"
        )
    try:
        with np.load(arrays_path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise HardwareError(f"{arrays_path}: unreadable ({error}); {_REEXPORT}") from None


def _network_from(
    manifest: dict, arrays: dict[str, np.ndarray], manifest_path: Path
) -> HardwareNetwork:
    try:
        layers = [
            _layer_from(index, entry, arrays, manifest_path)
            for index, entry in enumerate(manifest["layers"])
        ]
        source = manifest["input"]
        return HardwareNetwork(
            input_shape=tuple(int(v) for v in source["shape"]),
            input_scale=float(source["scale"]),
            input_bits=int(source["bits"]),
            layers=layers,
            substrate=manifest["substrate"],
            neuron=manifest.get("neuron") or {},
            learning=manifest.get("learning"),
            metadata=manifest.get("metadata") or {},
        )
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise HardwareError(
            f"{manifest_path}: malformed manifest ({type(error).__name__}: {error}); {_REEXPORT}"
        ) from None


def _layer_from(
    index: int, entry: dict, arrays: dict[str, np.ndarray], manifest_path: Path
) -> Layer:
    name = entry.get("name", f"layer{index}")
    loaded: dict[str, np.ndarray | None] = {}
    for field_name, dtype in (("weight", np.float32), ("weight_int", np.int16)):
        key = entry["arrays"][field_name]
        if key is None:
            loaded[field_name] = None
            continue
        if key not in arrays:
            raise HardwareError(
                f"{manifest_path}: {name}: array {key!r} is missing from {ARRAYS_FILE}; {_REEXPORT}"
            )
        if arrays[key].dtype != dtype:
            raise HardwareError(
                f"{manifest_path}: {name}: array {key!r} has dtype {arrays[key].dtype}, expected "
                f"{np.dtype(dtype)}; {_REEXPORT}"
            )
        loaded[field_name] = arrays[key]
    return Layer(
        type=entry["type"],
        in_shape=tuple(int(v) for v in entry["in_shape"]),
        out_shape=tuple(int(v) for v in entry["out_shape"]),
        activation=entry["activation"],
        weight=loaded["weight"],
        weight_int=loaded["weight_int"],
        weight_exp=entry["weight_exp"],
        kernel=_tuple_or_none(entry.get("kernel")),
        stride=_tuple_or_none(entry.get("stride")),
        padding=_tuple_or_none(entry.get("padding")),
    )


def _tuple_or_none(value: list | None) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(v) for v in value)
