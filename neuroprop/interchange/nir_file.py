"""``.nir`` files: read safely, node by node; written atomically.

A NIR file is HDF5 (``nir.write``): groups and numeric or string datasets, never a
pickle, so reading one runs no code. ``read_graph`` does what ``nir.read`` does, one node
at a time, so that a damaged or foreign file ends in one line naming the problem and the
node (not HDF5: "not a NIR file"; an unknown node type, a missing or malformed parameter:
"node 'x' (CubaLIF): ..."), never in a traceback. Nested graphs (NIR's form of recurrent
or composite layers) are refused here: neuroprop imports feed-forward chains.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

from neuroprop.errors import NeuropropError

SOURCE_KEY = "source"
SOURCE = "neuroprop"
"""Graph metadata ``source`` of the files neuroprop writes (and may replace)."""


def read_graph(path: Path) -> nir.NIRGraph:
    """The NIR graph in ``path`` (no type inference: the importer checks shapes itself)."""
    path = Path(path)
    if not path.is_file():
        raise NeuropropError(f"{path}: no such file; give a .nir file written by nir.write")
    try:
        with h5py.File(path, "r") as handle:
            if "node" not in handle:
                raise NeuropropError(f"{path}: an HDF5 file without NIR's 'node' group: not a "
                                     "NIR graph")
            raw = _to_dict(handle["node"])
    except NeuropropError:
        raise
    except Exception as err:  # h5py raises OSError, KeyError, ValueError... on damage
        raise NeuropropError(f"{path}: not a readable NIR file ({_reason(err)}); write it "
                             "with nir.write") from None
    if _text(raw.get("type")) != "NIRGraph":
        raise NeuropropError(f"{path}: the top node is {_text(raw.get('type'))!r}, not a "
                             "NIRGraph")
    nodes_raw = raw.get("nodes")
    if not isinstance(nodes_raw, dict) or not nodes_raw:
        raise NeuropropError(f"{path}: the graph has no nodes")
    nodes = {name: _node(name, node) for name, node in nodes_raw.items()}
    metadata = raw.get("metadata", {})
    return nir.NIRGraph(nodes=nodes, edges=_edges(path, raw.get("edges")),
                        metadata=metadata if isinstance(metadata, dict) else {},
                        type_check=False)


def write_graph(path: Path, graph: nir.NIRGraph) -> None:
    """Write ``graph`` with ``nir.write`` into a temporary file beside ``path``, then
    rename it over ``path``. An existing file is replaced only if neuroprop wrote it."""
    path = Path(path)
    if path.exists() and not _written_by_neuroprop(path):
        raise NeuropropError(f"{path} exists and is not a NIR file written by neuroprop; "
                             "choose another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def metadata_text(graph: nir.NIRGraph, key: str) -> str | None:
    """A string entry of the graph's metadata, if any."""
    value = graph.metadata.get(key) if isinstance(graph.metadata, dict) else None
    return _text(value) if isinstance(value, str | bytes | np.bytes_ | np.str_) else None


def metadata_number(graph: nir.NIRGraph, key: str) -> float | None:
    """A numeric entry of the graph's metadata, if any."""
    value = graph.metadata.get(key) if isinstance(graph.metadata, dict) else None
    if value is None or isinstance(value, str | bytes):
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(array) if array.shape == () and np.isfinite(array) else None


def _written_by_neuroprop(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as handle:
            return _text(handle["node"]["metadata"][SOURCE_KEY][()]) == SOURCE
    except Exception:  # any file that is not one of ours
        return False


def _to_dict(group: h5py.Group) -> dict[str, Any]:
    """An HDF5 group as nested dicts of arrays and strings (as ``nir.read`` sees it)."""
    result: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            result[key] = _to_dict(item)
        else:
            value = item[()]
            result[key] = value.decode("utf8") if isinstance(value, bytes) else value
    return result


def _node(name: str, raw: Any) -> nir.NIRNode:
    if not isinstance(raw, dict):
        raise NeuropropError(f"node {name!r}: not a NIR node (no parameters)")
    kind = _text(raw.get("type"))
    node_class = getattr(nir, kind, None) if isinstance(kind, str) else None
    if not (isinstance(node_class, type) and issubclass(node_class, nir.NIRNode)):
        raise NeuropropError(f"node {name!r}: unknown NIR node type {kind!r}; the file is "
                             f"damaged or from a NIR newer than {nir.version}")
    if node_class is nir.NIRGraph:
        raise NeuropropError(f"node {name!r}: a nested NIRGraph (a recurrent or composite "
                             "layer); neuroprop imports feed-forward chains only")
    try:
        return nir.dict2NIRNode({**raw, "type": kind})
    except Exception as err:  # missing keys (KeyError, TypeError), shapes (AssertionError)
        raise NeuropropError(f"node {name!r} ({kind}): missing or malformed parameters "
                             f"({_reason(err)})") from None


def _edges(path: Path, raw: Any) -> list[tuple[str, str]]:
    try:
        array = np.asarray(raw if raw is not None else [], dtype=object).reshape(-1, 2)
        return [(_text(a), _text(b)) for a, b in array]
    except (TypeError, ValueError):
        raise NeuropropError(f"{path}: the graph's edges are not pairs of node names") from None


def _text(value: Any) -> Any:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf8", errors="replace")
    return str(value) if isinstance(value, np.str_) else value


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    detail = text[0][:160] if text else ""
    return f"{type(err).__name__}: {detail}" if detail else type(err).__name__
