"""The export format: a versioned JSON manifest plus one ``.npz`` of arrays.

An export is a directory::

    manifest.json   what the network is (see below), with the arrays' SHA-256
    arrays.npz      float32 weights and int16 Loihi weight mantissas, one entry each

``manifest.json`` (format "neuroprop-export", version 3)::

    {"format": "neuroprop-export", "version": 3,
     "hardware_version": "0.1.0", "created": "2025-01-01T00:00:00+00:00",
     "substrate": "rate" | "spiking", "timesteps": 1 | T,
     "input": {"shape": [C, H, W], "bits": 8, "scale": 0.0039},
     "learning": null | {...}, "metadata": {...},
     "layers": [{"name": "layer0_conv2d", "type": "conv2d",
                 "in_shape": [...], "out_shape": [...],
                 "neuron": {"kind": "relu" | "lif" | ..., ...} | null,
                 "kernel": [kh, kw] | null, "stride": [sh, sw] | null,
                 "padding": [ph, pw] | null, "weight_exp": -7,
                 "arrays": {"weight": "layer0_conv2d.weight" | null,
                            "weight_int": "layer0_conv2d.weight_int" | null}}, ...],
     "arrays": {"file": "arrays.npz", "sha256": "..."},
     "manifest_sha256": "..."}

``manifest_sha256`` is the SHA-256 of the manifest's canonical JSON without that entry
(``manifest_checksum``: keys sorted, no spaces, ASCII), so it covers every other field,
the arrays' SHA-256 included: a changed exponent, input width, neuron parameter, T or
version is refused like a changed array. It guards against damage and stray edits, not
against someone who recomputes it (anyone can). Version 3 added it; version 2 exports
(the same fields without it) are refused with the advice to re-export, which takes
seconds from the run, rather than read unverified.

Layer types and neuron kinds are those of the registries ``hardware.layers`` and
``hardware.neurons``; weight layers carry a neuron dict, the others ``null``.
(Version 1 had one ``activation`` string per layer and a network-wide ``neuron``.)
``timesteps`` came later within version 2: a manifest without it is a rate export
(T = 1); a spiking export must state it. Readers that predate spiking exports refuse
them by their substrate.

Writing is atomic: everything goes into a staging folder beside the target
(``hardware.staging``: ``.neuroprop-export-new-<pid>-*``), which then replaces the old
export in two renames (the old one moved first into ``.neuroprop-export-old-<pid>-*``),
so a failed write leaves an old export untouched. A writer killed outright (SIGKILL)
leaves its staging folder; the next export into the same parent folder removes such
leftovers of dead writers (and puts back an old export that was moved aside but not
yet replaced). Loading checks the format name, the version, both checksums, every
array's presence, dtype and shape, the layer chain and the Loihi weight rules, and
refuses a bad export with one ``HardwareError`` line.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hardware import __version__
from hardware.errors import REEXPORT, HardwareError
from hardware.graph import HardwareNetwork, Layer, layer_name
from hardware.layers import LAYER_KINDS, WeightKind, layer_kind_problem
from hardware.loihi import INPUT_BITS, check_weight_exponent, check_weight_mantissas
from hardware.neurons import NEURON_KINDS, SUBSTRATES, kinds_for, neuron_problem
from hardware.staging import CONTENT, make_staging, stale_staging

FORMAT_NAME = "neuroprop-export"
FORMAT_VERSION = 3
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"
MANIFEST_CHECKSUM = "manifest_sha256"
NEW_PREFIX = ".neuroprop-export-new-"
OLD_PREFIX = ".neuroprop-export-old-"


def validate_network(net: HardwareNetwork, source: str = "network") -> None:
    """Check that ``net`` is a consistent feed-forward chain that Loihi can hold.

    Checks: the substrate and its ``timesteps`` (1 for rate nets, >= 1 for spiking
    ones), layer types and neuron kinds known to their registries (``hardware.layers``,
    ``hardware.neurons``), a neuron on every weight layer and none on the others, each
    neuron kind of the net's substrate and in its role (hidden or output), no layer kind
    the substrate refuses, each layer's ``in_shape`` equal to the previous
    ``out_shape`` (the first to the input shape), the kind's own shape rules (output
    shapes implied by kernel/stride/padding), weight shapes, a dense output layer with
    an output neuron (linear, li), and, for a quantised network, the Loihi mantissa
    and exponent rules of ``hardware.loihi`` and the neurons' integer registers.
    Raises ``HardwareError`` naming ``source`` and the layer.
    """
    for name in ("metadata", "learning"):
        value = getattr(net, name)
        if not isinstance(value, dict) and not (name == "learning" and value is None):
            raise HardwareError(
                f"{source}: {name} is a {type(value).__name__}, expected a mapping; {REEXPORT}"
            )
    if net.substrate not in SUBSTRATES:
        raise HardwareError(
            f"{source}: unknown substrate {net.substrate!r} (supported: {', '.join(SUBSTRATES)}); "
            f"{REEXPORT}"
        )
    steps = net.timesteps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise HardwareError(
            f"{source}: timesteps {steps!r} must be an integer >= 1 (steps per sample); {REEXPORT}"
        )
    if net.substrate == "rate" and steps != 1:
        raise HardwareError(
            f"{source}: a rate net runs 1 step per sample, got timesteps {steps}; export "
            f"timesteps=1 or substrate='spiking'; {REEXPORT}"
        )
    if not 1 <= int(net.input_bits) <= INPUT_BITS:
        raise HardwareError(
            f"{source}: input_bits {net.input_bits} is outside 1..{INPUT_BITS} (Loihi inputs "
            f"are {INPUT_BITS}-bit at most); {REEXPORT}"
        )
    if not (math.isfinite(net.input_scale) and net.input_scale > 0):
        raise HardwareError(
            f"{source}: input scale {net.input_scale} must be a positive number; {REEXPORT}"
        )
    if not net.layers:
        raise HardwareError(f"{source}: the network has no layers; {REEXPORT}")
    previous = tuple(net.input_shape)
    last_index = len(net.layers) - 1
    for index, layer in enumerate(net.layers):
        where = f"{source}: {layer_name(index, layer)}"
        problem = _layer_problem(layer, previous) or _substrate_problem(
            layer, net.substrate, "output" if index == last_index else "hidden"
        )
        if problem:
            raise HardwareError(f"{where}: {problem}; {REEXPORT}")
        if layer.weight_int is not None:
            check_weight_mantissas(layer.weight_int, where)
            check_weight_exponent(layer.weight_exp, where)
        previous = tuple(layer.out_shape)
    last = net.layers[-1]
    last_neuron = last.neuron.get("kind") if isinstance(last.neuron, dict) else "neuron-less"
    outputs = kinds_for(net.substrate, "output")
    if last.type != "dense" or last_neuron not in outputs:
        raise HardwareError(
            f"{source}: the last layer is a {last_neuron} {last.type}, but the Q-value "
            f"output must be a {' or '.join(outputs)} dense layer; {REEXPORT}"
        )


def _substrate_problem(layer: Layer, substrate: str, role: str) -> str | None:
    """What keeps ``layer`` out of a ``substrate`` net in ``role`` (hidden/output), or None."""
    refusal = LAYER_KINDS[layer.type].substrate_refusals.get(substrate)
    if refusal:
        return refusal
    if layer.neuron is None:
        return None
    kind = NEURON_KINDS[layer.neuron["kind"]]
    if kind.substrate != substrate:
        return (
            f"a {kind.name} neuron belongs in a {kind.substrate} net, not a {substrate} one "
            f"(export the net with substrate={kind.substrate!r} or {substrate} neurons)"
        )
    if role == "hidden" and role not in kind.roles:  # the output: validate_network's check
        allowed = " or ".join(kinds_for(substrate, role))
        return f"a {kind.name} neuron cannot sit in a hidden layer (use {allowed})"
    if layer.weight_int is not None and not kind.is_quantised(layer.neuron):
        return (
            f"the weights are quantised but the {kind.name} neuron has no integer registers "
            "(re-quantise with hardware.quantize)"
        )
    return None


def _layer_problem(layer: Layer, previous: tuple[int, ...]) -> str | None:
    """The first problem with one layer that follows an output of shape ``previous``."""
    problem = layer_kind_problem(layer.type)
    if problem:
        return problem
    kind = LAYER_KINDS[layer.type]
    if kind.has_weights:
        problem = neuron_problem(layer.neuron)
        if problem:
            return problem
    elif layer.neuron is not None:
        return f"a {layer.type} layer carries no neuron, got {layer.neuron!r}"
    if tuple(layer.in_shape) != previous:
        return f"in_shape {tuple(layer.in_shape)} does not match the previous output {previous}"
    problem = kind.check(layer)
    if problem:
        return problem
    if isinstance(kind, WeightKind):
        return _weights_problem(kind, layer)
    if layer.weight is not None or layer.weight_int is not None:
        return f"a {layer.type} layer cannot carry weights"
    return None


def _weights_problem(kind: WeightKind, layer: Layer) -> str | None:
    """The first problem with a weight layer's arrays (shapes, values, dtypes), or None."""
    expected = kind.weight_shape(tuple(layer.in_shape), tuple(layer.out_shape), layer.kernel)
    if layer.weight is None:
        return f"the {layer.type} layer has no float weights"
    for name in ("weight", "weight_int"):
        array = getattr(layer, name)
        if array is not None and tuple(array.shape) != expected:
            return (
                f"{name} has shape {tuple(array.shape)}, expected {expected} from its in/out "
                f"shapes and kernel{_axis_difference(kind, tuple(array.shape), expected)}"
            )
    if not np.all(np.isfinite(layer.weight)):
        return "weight holds NaN or infinite values (retrain the network)"
    if layer.weight_int is not None and not np.issubdtype(layer.weight_int.dtype, np.integer):
        return f"weight_int has dtype {layer.weight_int.dtype}, expected integers"
    return None


def _axis_difference(kind: WeightKind, shape: tuple[int, ...], expected: tuple[int, ...]) -> str:
    """`` (in channels: 3, not 4)`` for the first weight axis that differs, if any."""
    if len(shape) != len(expected):
        return ""
    for axis, actual, wanted in zip(kind.weight_axes(), shape, expected, strict=True):
        if actual != wanted:
            return f" ({axis}: {actual}, not {wanted})"
    return ""


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
                "neuron": None if layer.neuron is None else dict(layer.neuron),
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
        "timesteps": int(net.timesteps),
        "input": {
            "shape": [int(v) for v in net.input_shape],
            "bits": int(net.input_bits),
            "scale": float(net.input_scale),
        },
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


def manifest_checksum(manifest: dict) -> str:
    """SHA-256 of the canonical JSON of ``manifest`` without its ``manifest_sha256``
    (keys sorted, separators "," and ":", ASCII only); ValueError if it holds NaN."""
    body = {key: value for key, value in manifest.items() if key != MANIFEST_CHECKSUM}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _manifest_text(manifest: dict, target: Path) -> str:
    """The manifest as written, with its checksum (computed on the JSON as it will be read
    back, so numpy scalars in the metadata make no difference)."""
    try:
        plain = json.loads(json.dumps(manifest, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise HardwareError(
            f"{target}: metadata, neuron or learning parameters are not JSON-serialisable "
            f"({error}); pass plain numbers, strings, lists and dicts"
        ) from None
    plain[MANIFEST_CHECKSUM] = manifest_checksum(plain)
    return json.dumps(plain, indent=2) + "\n"


def _cannot_write(target: Path, error: OSError) -> HardwareError:
    return HardwareError(
        f"cannot write the export {target} ({error.strerror or type(error).__name__}); make "
        "room on the disk or choose a writable export path"
    )


def save_export(net: HardwareNetwork, out_dir: str | Path) -> Path:
    """Write ``net`` as an export directory at ``out_dir`` (atomically) and return its path.

    The network is validated first. An existing export at ``out_dir`` is replaced only
    once the new one is complete; a directory there that is not an export is refused.
    Leftovers of killed writers in the parent folder are cleared first
    (``remove_stale_staging``). A refused write (read-only folder, full disk) is one
    ``HardwareError`` line, with nothing left behind.
    """
    target = Path(out_dir).expanduser().resolve()
    validate_network(net, source=str(target))
    if target.exists() and not target.is_dir():
        raise HardwareError(f"{target}: exists and is not a directory; choose another export path")
    manifest, arrays = _manifest_and_arrays(net)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target.parent)
        if target.is_dir():
            _check_replaceable(target)
        staging = make_staging(target.parent, NEW_PREFIX, target.name)
    except OSError as error:
        raise _cannot_write(target, error) from None
    try:
        content = staging / CONTENT
        content.mkdir()
        np.savez(content / ARRAYS_FILE, **arrays)
        manifest["arrays"]["sha256"] = _sha256(content / ARRAYS_FILE)
        (content / MANIFEST_FILE).write_text(_manifest_text(manifest, target))
        _replace_directory(content, target)
    except OSError as error:
        raise _cannot_write(target, error) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def remove_stale_staging(parent: Path) -> None:
    """Remove the staging folders that killed writers left in ``parent``
    (``hardware.staging.stale_staging``). An old export that a killed writer had moved
    aside is put back first when nothing has taken its place."""
    for folder, marker in stale_staging(parent, OLD_PREFIX):
        old, name = folder / CONTENT, marker["target"]
        if old.is_dir() and name and Path(name).name == name and not (parent / name).exists():
            old.rename(parent / name)
        shutil.rmtree(folder, ignore_errors=True)
    for folder, _ in stale_staging(parent, NEW_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)


EXPORT_FILES = (MANIFEST_FILE, ARRAYS_FILE, "lava_summary.json")
"""What an export folder may hold: what save_export writes, and neuroprop run's summary."""


def _check_replaceable(target: Path) -> None:
    """An existing folder is replaced only if it is an export and holds nothing else, so
    that no file a user put there is deleted."""
    entries = sorted(entry.name for entry in target.iterdir())
    if not entries:
        return
    others = [name for name in entries if name not in EXPORT_FILES]
    if others:
        raise HardwareError(
            f"{target}: holds {others[0]!r}, which is not part of an export (an export "
            f"folder holds only {', '.join(EXPORT_FILES)}); choose another export path"
        )
    try:
        is_export = json.loads((target / MANIFEST_FILE).read_text()).get("format") == FORMAT_NAME
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        is_export = False
    if not is_export:
        raise HardwareError(
            f"{target}: is a non-empty directory without a neuroprop {MANIFEST_FILE}, not an "
            "export; choose another export path or remove it"
        )


def _replace_directory(content: Path, target: Path) -> None:
    """Move the complete ``content`` folder to ``target``; an old export there is first
    moved into a staging folder of its own and deleted once the new one is in place."""
    if not target.exists():
        content.rename(target)
        return
    retired = make_staging(target.parent, OLD_PREFIX, target.name)
    target.rename(retired / CONTENT)
    try:
        content.rename(target)
    except BaseException:
        (retired / CONTENT).rename(target)
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
            f"{manifest_path}: missing, so {directory} is not an export; {REEXPORT}"
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
            f"{manifest_path}: unreadable JSON ({error}); the export is damaged, {REEXPORT}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise HardwareError(
            f"{manifest_path}: format is {found!r}, not {FORMAT_NAME!r}; point to a neuroprop "
            f"export or {REEXPORT}"
        )
    version = manifest.get("version")
    if version != FORMAT_VERSION:
        raise HardwareError(
            f"{manifest_path}: export format version {version!r} is not supported (this neuroprop "
            f"reads version {FORMAT_VERSION}); {REEXPORT}"
        )
    try:
        intact = manifest_checksum(manifest) == manifest.get(MANIFEST_CHECKSUM)
    except ValueError:  # NaN or infinity, which no export holds
        intact = False
    if not intact:
        raise HardwareError(
            f"{manifest_path}: checksum mismatch ({MANIFEST_CHECKSUM}): the manifest is corrupt "
            f"or was edited; {REEXPORT}"
        )
    for key in ("substrate", "input", "layers", "arrays"):
        if key not in manifest:
            raise HardwareError(f"{manifest_path}: the manifest has no {key!r} entry; {REEXPORT}")
    return manifest


def _read_arrays(directory: Path, manifest: dict, manifest_path: Path) -> dict[str, np.ndarray]:
    entry = manifest["arrays"]
    file_name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(file_name, str) or Path(file_name).name != file_name:
        raise HardwareError(f"{manifest_path}: bad arrays entry {entry!r}; {REEXPORT}")
    arrays_path = directory / file_name
    if not arrays_path.is_file():
        raise HardwareError(f"{arrays_path}: missing; the export is incomplete, {REEXPORT}")
    if _sha256(arrays_path) != entry.get("sha256"):
        raise HardwareError(
            f"{arrays_path}: checksum mismatch with {MANIFEST_FILE} (corrupt or modified "
            f"arrays); {REEXPORT}"
        )
    try:
        with np.load(arrays_path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise HardwareError(f"{arrays_path}: unreadable ({error}); {REEXPORT}") from None


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
            timesteps=_timesteps(manifest, manifest_path),
            learning=manifest.get("learning"),
            metadata=manifest.get("metadata", {}),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise HardwareError(
            f"{manifest_path}: malformed manifest ({type(error).__name__}: {error}); {REEXPORT}"
        ) from None


def _timesteps(manifest: dict, manifest_path: Path) -> object:
    """``timesteps`` as written; 1 when a rate manifest predates the field."""
    if "timesteps" in manifest:
        return manifest["timesteps"]
    if manifest["substrate"] == "rate":
        return 1
    raise HardwareError(
        f"{manifest_path}: the manifest has no 'timesteps' entry, which a "
        f"{manifest['substrate']} export needs (steps per sample); {REEXPORT}"
    )


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
                f"{manifest_path}: {name}: array {key!r} is missing from {ARRAYS_FILE}; {REEXPORT}"
            )
        if arrays[key].dtype != dtype:
            raise HardwareError(
                f"{manifest_path}: {name}: array {key!r} has dtype {arrays[key].dtype}, expected "
                f"{np.dtype(dtype)}; {REEXPORT}"
            )
        loaded[field_name] = arrays[key]
    return Layer(
        type=entry["type"],
        in_shape=tuple(int(v) for v in entry["in_shape"]),
        out_shape=tuple(int(v) for v in entry["out_shape"]),
        neuron=entry["neuron"],
        weight=loaded["weight"],
        weight_int=loaded["weight_int"],
        weight_exp=entry["weight_exp"],
        kernel=_tuple_or_none(entry.get("kernel")),
        stride=_tuple_or_none(entry.get("stride")),
        padding=_tuple_or_none(entry.get("padding")),
    )


def _tuple_or_none(value: list | None) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(v) for v in value)
