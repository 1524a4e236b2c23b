"""neuroprop -> NIR: the nodes, the parameter mapping, the round trip back, the refusals."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch
import yaml
from nir_nets import DT, T, inputs, spiking_net

from neuroprop.cli import main
from neuroprop.errors import NeuropropError
from neuroprop.interchange.neurons import NO_LEAK_STEPS
from neuroprop.interchange.nir_export import network_graph
from neuroprop.interchange.nir_file import write_graph
from neuroprop.interchange.nir_import import import_nir
from neuroprop.network import Network, parse_network
from neuroprop.training.trainer import load_trained

CONV = [{"type": "conv2d", "channels": 4, "kernel": 3, "stride": 2, "padding": 1},
        {"type": "dense", "units": 16}]


def test_each_layer_becomes_a_synapse_and_a_neuron_node(tmp_path):
    net = spiking_net(CONV, du=0.5, dv=0.0, vth=0.8, readout={"kind": "li", "du": 0.25,
                                                              "dv": 0.125})
    write_graph(tmp_path / "net.nir", network_graph(net))
    graph = nir.read(tmp_path / "net.nir")  # nir's own reader, with its type checks
    chain = ["input", "conv2d0", "lif0", "flatten1", "dense2", "lif2", "output3", "li3",
             "output"]
    assert [edge[0] for edge in graph.edges] == chain[:-1]
    assert [edge[1] for edge in graph.edges] == chain[1:]
    types = [type(graph.nodes[name]).__name__ for name in chain]
    assert types == ["Input", "Conv2d", "CubaLIF", "Flatten", "Linear", "CubaLIF", "Linear",
                     "CubaLI", "Output"]
    conv, lif = graph.nodes["conv2d0"], graph.nodes["lif0"]
    assert tuple(conv.stride) == (2, 2) and tuple(conv.padding) == (1, 1)
    np.testing.assert_array_equal(conv.weight, net.layers[0].weight.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["output3"].weight,
                                  net.layers[3].weight.detach().numpy())
    assert lif.v_threshold.shape == (4, 4, 4)
    expected = {"tau_syn": DT / 0.5, "w_in": 2.0, "tau_mem": DT * NO_LEAK_STEPS,
                "r": NO_LEAK_STEPS, "v_threshold": 0.8, "v_leak": 0.0, "v_reset": 0.0}
    for key, value in expected.items():
        np.testing.assert_allclose(getattr(lif, key), value, rtol=1e-15)
    li = graph.nodes["li3"]
    for key, value in {"tau_syn": DT / 0.25, "w_in": 4.0, "tau_mem": DT / 0.125,
                       "r": 8.0}.items():
        np.testing.assert_allclose(getattr(li, key), value, rtol=1e-15)
    assert graph.metadata["source"] == "neuroprop" and graph.metadata["dt"] == DT
    assert graph.metadata["timesteps"] == T and graph.metadata["encoding"] == "constant"


def test_a_dense_net_takes_the_flat_input_and_the_default_readout_is_an_li(tmp_path):
    graph = network_graph(spiking_net([{"type": "dense", "units": 8}]))
    assert list(graph.nodes) == ["input", "dense1", "lif1", "output2", "li2", "output"]
    assert tuple(graph.nodes["input"].input_type["input"]) == (64,)
    assert tuple(graph.metadata["input_shape"]) == (1, 8, 8)
    li = graph.nodes["li2"]
    assert isinstance(li, nir.LI)
    np.testing.assert_allclose(li.tau, DT * NO_LEAK_STEPS)


@pytest.mark.parametrize(("layers", "du", "dv", "vth"), [
    (CONV, 1.0, 0.0, 1.0), (CONV, 0.3, 0.1, 0.7),
    ([{"type": "dense", "units": 24}, {"type": "dense", "units": 12}], 0.5, 0.25, 1.3)])
def test_export_then_import_gives_back_the_same_network(layers, du, dv, vth, tmp_path):
    net = spiking_net(layers, du, dv, vth)
    write_graph(tmp_path / "net.nir", network_graph(net))
    out, _ = import_nir(tmp_path / "net.nir", tmp_path / "imported")
    back = load_trained(out).network
    assert back.spec.layers == net.spec.layers  # the weights' init is not part of NIR
    assert (back.spec.timesteps, back.spec.encoding) == (T, "constant")
    theirs = back.state_dict()
    for name, weight in net.state_dict().items():
        assert torch.equal(weight, theirs[name])
        assert torch.equal(weight, theirs[name.replace("weight", "feedback_weight")])
    x = inputs(50)
    with torch.no_grad():
        assert torch.equal(net(x), back(x))
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["dataset"]["name"] == "digits" and config["rule"] == "brainprop"


@pytest.mark.parametrize(("section", "message"), [
    ({"substrate": "rate", "layers": [{"type": "dense", "units": 8}, {"type": "output"}]},
     r"network.layers\[1\] \(dense\): NIR has no relu neuron .*neuroprop convert"),
    ({"substrate": "spiking", "layers": [{"type": "loccon2d", "channels": 2, "kernel": 3},
                                         {"type": "output"}]},
     r"network.layers\[0\] \(loccon2d\): NIR has no locally connected node"),
    ({"substrate": "rate", "layers": [{"type": "maxpool2d", "kernel": 2},
                                      {"type": "output"}]},
     r"network.layers\[0\] \(maxpool2d\): NIR has no max pooling node"),
])
def test_what_nir_cannot_express_is_refused_naming_the_layer(section, message):
    network = Network(parse_network(section, (1, 8, 8), 10))
    with pytest.raises(NeuropropError, match=message):
        network_graph(network)


def test_a_rate_net_of_linear_neurons_is_a_chain_of_linear_nodes():
    section = {"substrate": "rate", "layers": [{"type": "dense", "units": 8, "neuron": "linear"},
                                               {"type": "output"}]}
    graph = network_graph(Network(parse_network(section, (1, 8, 8), 10)))
    assert [type(node).__name__ for node in graph.nodes.values()] == [
        "Input", "Linear", "Linear", "Output"]


def test_the_command_exports_a_spiking_run_and_refuses_a_relu_run(tmp_path, capsys):
    run = tmp_path / "spiking"
    assert main(["train", "--config", "configs/digits_spiking.yaml", "--run-dir", str(run),
                 "--no-progress", "training.max_epochs=1", "network.timesteps=4"]) == 0
    assert main(["export", "--target", "nir", str(run), "--dt", "0.001"]) == 0
    graph = nir.read(run / "network.nir")
    assert graph.metadata["dt"] == 1e-3 and graph.metadata["timesteps"] == 4
    assert math.isclose(float(graph.nodes["lif1"].tau_mem[0]), 1e-3 * NO_LEAK_STEPS)
    assert main(["export", "--target", "nir", str(run)]) == 0  # replaces its own file
    rate = tmp_path / "rate"
    assert main(["train", "--run-dir", str(rate), "--no-progress",
                 "training.max_epochs=1"]) == 0
    capsys.readouterr()
    assert main(["export", "--target", "nir", str(rate)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuroprop: error: network.layers[1] (dense): NIR has no relu")
    assert "\n" not in err and not (rate / "network.nir").exists()


def test_a_file_neuroprop_did_not_write_is_never_replaced(tmp_path):
    mine = tmp_path / "notes.nir"
    mine.write_text("my notes")
    with pytest.raises(NeuropropError, match="not a NIR file written by neuroprop"):
        write_graph(mine, network_graph(spiking_net([{"type": "dense", "units": 4}])))
    assert mine.read_text() == "my notes"
