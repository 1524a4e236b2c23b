"""NIR -> neuroprop: damaged, foreign and unsupported files end in one line naming the node."""

from __future__ import annotations

import re

import h5py
import nir
import numpy as np
import pytest
from nir_nets import DT, spiking_net

from neuroprop.cli import main
from neuroprop.errors import NeuropropError
from neuroprop.interchange.nir_export import network_graph
from neuroprop.interchange.nir_file import write_graph
from neuroprop.interchange.nir_import import import_nir
from neuroprop.training.trainer import load_trained

H = 16


def cuba(size: int = H, **changes) -> nir.CubaLIF:
    """A CubaLIF in neuroprop's convention (du 0.5, dv 0.25, vth 1), with ``changes``."""
    params = {"tau_syn": DT / 0.5, "tau_mem": DT / 0.25, "r": 4.0, "v_leak": 0.0,
              "v_threshold": 1.0, "v_reset": 0.0, "w_in": 2.0, **changes}
    return nir.CubaLIF(**{key: np.broadcast_to(np.asarray(value, dtype=np.float64),
                                               (size,)).copy()
                          for key, value in params.items()})


def chain(*nodes: nir.NIRNode) -> nir.NIRGraph:
    """Input (64) -> nodes... -> Output, nodes named n0, n1, ..."""
    named = {"input": nir.Input(input_type={"input": np.array([64])})}
    named.update({f"n{i}": node for i, node in enumerate(nodes)})
    named["output"] = nir.Output(output_type={"output": np.array([10])})
    names = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(names[:-1], names[1:], strict=True)),
                        type_check=False)


def linear(rows: int, cols: int) -> nir.Linear:
    return nir.Linear(weight=np.random.default_rng(rows).normal(size=(rows, cols)))


def good() -> nir.NIRGraph:
    return chain(linear(H, 64), cuba(), linear(10, H))


@pytest.fixture
def written(tmp_path):
    """Write a graph, return its path."""
    def write(graph: nir.NIRGraph):
        nir.write(tmp_path / "net.nir", graph)
        return tmp_path / "net.nir"
    return write


def test_a_well_formed_chain_imports(written, tmp_path):
    out, report = import_nir(written(good()), tmp_path / "imported")
    network = load_trained(out).network
    assert network.spec.layers[1].neuron.to_dict() == {"kind": "lif", "du": 0.5, "dv": 0.25,
                                                       "vth": 1.0}
    lines = " ".join(report.split())
    assert "network.layers[1] dense <- 'n0' + 'n1': lif (du 0.5, dv 0.25, vth 1)" in lines
    assert "network.layers[2] output <- 'n2': li (du 1, dv 0)" in lines
    assert {path.name for path in out.iterdir()} == {"config.yaml", "best.pt", "import.json"}


def test_gains_other_than_one_are_folded_into_the_weights(written, tmp_path):
    """r = 1, w_in = 1 (norse's convention) with du 0.5, dv 0.25: the NIR voltage is
    du * dv = 0.125 times neuroprop's for the same weights."""
    graph = chain(linear(H, 64), cuba(r=1.0, w_in=1.0), linear(10, H))
    out, report = import_nir(written(graph), tmp_path / "imported")
    network = load_trained(out).network
    np.testing.assert_allclose(network.layers[1].weight.detach().numpy(),
                               graph.nodes["n0"].weight * 0.125, rtol=1e-6)
    assert "weights x 0.125" in report


@pytest.mark.parametrize(("nodes", "message"), [
    ((linear(H, 63), cuba(), linear(10, H)),
     r"node 'n0' \(Linear\): weight of shape \[16, 63\]; expected \[units, 64\]"),
    ((nir.Affine(weight=np.ones((H, 64)), bias=np.full(H, 0.1)), cuba(), linear(10, H)),
     r"node 'n0' \(Affine\): a nonzero bias"),
    ((linear(H, 64), cuba(size=5), linear(10, H)),
     r"node 'n1' \(CubaLIF\): v_leak has 5 values for a layer of 16 neurons"),
    ((linear(H, 64), cuba(v_threshold=np.linspace(1, 2, H)), linear(10, H)),
     r"node 'n1' \(CubaLIF\): v_threshold differs between the neurons"),
    ((linear(H, 64), cuba(v_reset=0.5), linear(10, H)),
     r"node 'n1' \(CubaLIF\): v_reset = 0.5, not 0"),
    ((linear(H, 64), cuba(v_leak=0.1), linear(10, H)), r"node 'n1' \(CubaLIF\): v_leak = 0.1"),
    ((linear(H, 64), cuba(tau_syn=DT / 2), linear(10, H)),
     r"node 'n1' \(CubaLIF\): tau_syn = 5e-05 s gives a current decay du = dt / tau_syn = 2"),
    ((linear(H, 64), cuba(tau_mem=DT), linear(10, H)),
     r"node 'n1' \(CubaLIF\): tau_mem = 0.0001 s gives a voltage decay dv = dt / tau_mem = 1"),
    ((linear(H, 64), cuba(), linear(10, H), cuba(size=10)),
     r"node 'n3' \(CubaLIF\) ends the graph with spikes"),
    ((cuba(size=64), linear(10, 64)), r"node 'n0' \(CubaLIF\): expected a Linear, Affine"),
    ((linear(H, 64), linear(10, H)), r"node 'n1' \(Linear\): expected a neuron node after 'n0'"),
    ((linear(H, 64), cuba(), nir.AvgPool2d(kernel_size=np.array([2, 2]),
                                           stride=np.array([2, 2]), padding=np.array([0, 0])),
      linear(10, H)),
     r"node 'n2' \(AvgPool2d\): neuroprop does not import AvgPool2d nodes \(supported:"),
])
def test_unsupported_graphs_are_refused_naming_the_node(nodes, message, written, tmp_path):
    with pytest.raises(NeuropropError, match=message):
        import_nir(written(chain(*nodes)), tmp_path / "imported")
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize(("node", "neuron"), [
    (nir.LIF(tau=np.full(H, DT / 0.25), r=np.full(H, 4.0), v_leak=np.zeros(H),
             v_threshold=np.full(H, 0.5)), {"kind": "lif", "du": 1.0, "dv": 0.25, "vth": 0.5}),
    (nir.IF(r=np.full(H, 1 / DT), v_threshold=np.full(H, 2.0)),
     {"kind": "lif", "du": 1.0, "dv": 0.0, "vth": 2.0}),
])
def test_lif_and_if_nodes_import_without_synaptic_current(node, neuron, written, tmp_path):
    out, _ = import_nir(written(chain(linear(H, 64), node, linear(10, H))), tmp_path / "a")
    network = load_trained(out).network
    assert network.spec.layers[1].neuron.to_dict() == neuron
    np.testing.assert_array_equal(network.layers[1].weight.detach().numpy(),
                                  linear(H, 64).weight.astype(np.float32))


def test_branches_and_nested_graphs_are_refused(written, tmp_path):
    graph = good()
    graph.nodes["extra"] = linear(10, H)
    graph.edges.append(("n1", "extra"))
    with pytest.raises(NeuropropError, match="node 'n1' branches to 'n2', 'extra'"):
        import_nir(written(graph), tmp_path / "a")
    recurrent = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([H])}),
                                    "lif": cuba(), "w_rec": linear(H, H),
                                    "out": nir.Output(output_type={"output": np.array([H])})},
                             edges=[("in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                                    ("lif", "out")])
    with pytest.raises(NeuropropError, match="node 'n1': a nested NIRGraph"):
        import_nir(written(chain(linear(H, 64), recurrent, linear(10, H))), tmp_path / "b")


def damage(path, edit) -> None:
    with h5py.File(path, "r+") as handle:
        edit(handle["node"]["nodes"])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda nodes: (nodes["n1"].__delitem__("type"),
                    nodes["n1"].create_dataset("type", data="MysteryLIF")),
     r"^node 'n1': unknown NIR node type 'MysteryLIF'"),
    (lambda nodes: nodes["n1"].__delitem__("tau_mem"),
     r"^node 'n1' \(CubaLIF\): missing or malformed parameters \(.*tau_mem"),
    (lambda nodes: (nodes["n1"].__delitem__("r"), nodes["n1"].create_dataset("r", data=[1, 2])),
     r"^node 'n1' \(CubaLIF\): missing or malformed parameters \(AssertionError"),
])
def test_a_damaged_node_is_named_in_one_line(edit, message, written, tmp_path, capsys):
    path = written(good())
    damage(path, edit)
    assert main(["import", str(path), "--out", str(tmp_path / "imported")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("neuroprop: error: ")
    assert re.search(message, err.removeprefix("neuroprop: error: "))
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize("content", [b"not hdf5 at all\n" * 10, b"\x89HDF\r\n\x1a\n" + b"\0" * 40])
def test_a_file_that_is_not_nir_is_one_line(content, tmp_path, capsys):
    path = tmp_path / "net.nir"
    path.write_bytes(content)
    assert main(["import", str(path), "--out", str(tmp_path / "imported")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"neuroprop: error: {path}: not a readable NIR file")
    assert "\n" not in err


def test_a_truncated_file_and_an_hdf5_file_without_a_graph_are_one_line(written, tmp_path):
    path = written(good())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NeuropropError, match="not a readable NIR file"):
        import_nir(path, tmp_path / "a")
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle.create_dataset("x", data=[1, 2, 3])
    with pytest.raises(NeuropropError, match="without NIR's 'node' group"):
        import_nir(tmp_path / "other.h5", tmp_path / "b")


def test_the_dataset_is_chosen_by_shape_or_asked_for(written, tmp_path):
    wide = chain(linear(H, 784), cuba(), linear(10, H))
    wide.nodes["input"] = nir.Input(input_type={"input": np.array([784])})
    with pytest.raises(NeuropropError, match=r"several fit \(mnist, fashion_mnist\); pass "
                                             "--dataset"):
        import_nir(written(wide), tmp_path / "a")
    with pytest.raises(NeuropropError, match="read-out has 10 units but cifar100 has 100"):
        import_nir(written(good()), tmp_path / "b", dataset="cifar100")
    batch_axis = good()
    batch_axis.nodes["input"] = nir.Input(input_type={"input": np.array([2, 64])})
    with pytest.raises(NeuropropError, match=r"node 'input' \(Input\): shape \[2, 64\] fits "
                                             "neither.*ignore_dims"):
        import_nir(written(batch_axis), tmp_path / "c", dataset="digits")


def test_an_existing_folder_is_never_written_into(written, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    with pytest.raises(NeuropropError, match="already exists"):
        import_nir(written(good()), out)
    assert [path.name for path in out.iterdir()] == ["notes.txt"]


def test_timesteps_and_dt_come_from_the_file_unless_given(tmp_path):
    net = spiking_net([{"type": "dense", "units": 8}], du=0.5, dv=0.25)
    graph = network_graph(net, dt=1e-3)
    write_graph(tmp_path / "net.nir", graph)
    out, report = import_nir(tmp_path / "net.nir", tmp_path / "a")
    spec = load_trained(out).network.spec
    assert spec.timesteps == 16 and spec.layers[1].neuron.du == 0.5 and "dt = 0.001" in report
    out, _ = import_nir(tmp_path / "net.nir", tmp_path / "b", timesteps=5, dt=2e-3)
    spec = load_trained(out).network.spec
    assert spec.timesteps == 5 and spec.layers[1].neuron.du == 1.0
    assert spec.layers[1].neuron.dv == 0.5
