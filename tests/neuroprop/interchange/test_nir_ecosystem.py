"""neuroprop -> NIR -> norse / snnTorch, and snnTorch / norse -> NIR -> neuroprop: the same
spikes at every step of every hidden layer on the same inputs (measured: no spike differs;
Q-values within float32 rounding of the summation order)."""

from __future__ import annotations

import logging
import warnings

import nir
import numpy as np
import pytest
import torch
from nir_nets import DT, T, inputs, module_spikes, neuroprop_spikes, spiking_net

from neuroprop.interchange.nir_export import network_graph
from neuroprop.interchange.nir_file import read_graph, write_graph
from neuroprop.interchange.nir_import import import_nir
from neuroprop.training.trainer import load_trained

with warnings.catch_warnings():  # norse warns about torch.jit.script at import
    warnings.simplefilter("ignore")
    import norse.torch as norse
import snntorch
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

DENSE = [{"type": "dense", "units": 40}, {"type": "dense", "units": 30}]
NEURONS = [(1.0, 0.0, 1.0), (0.5, 0.25, 1.0), (0.3, 0.1, 0.7)]


def written(graph: nir.NIRGraph, tmp_path) -> nir.NIRGraph:
    """The graph as a reader sees it after nir.write / nir.read."""
    write_graph(tmp_path / "net.nir", graph)
    return nir.read(tmp_path / "net.nir")


def quiet(build, *args, **kwargs):
    """snnTorch's importer prints, norse's logs warnings: keep the test output clean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return build(*args, **kwargs)
        finally:
            logging.disable(logging.NOTSET)


@pytest.mark.parametrize(("du", "dv", "vth"), NEURONS)
def test_neuroprop_to_norse_gives_the_same_spikes(du, dv, vth, tmp_path):
    net = spiking_net(DENSE, du, dv, vth)
    x = inputs()
    spikes, q = neuroprop_spikes(net, x)
    module = quiet(norse.from_nir, written(network_graph(net), tmp_path), dt=DT)
    # norse has no LI node: it drops the read-out, its output is the output layer's current
    theirs, mean_output = module_spikes(module, x.flatten(1), ["lif1", "lif2"], stateful=True)
    for index in (1, 2):
        assert torch.equal(spikes[index], theirs[f"lif{index}"])
        assert 0.05 < spikes[index].float().mean() < 0.95
    torch.testing.assert_close(mean_output, q, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("du", "dv", "vth"), NEURONS)
def test_neuroprop_to_snntorch_gives_the_same_spikes(du, dv, vth, tmp_path):
    net = spiking_net(DENSE, du, dv, vth, seed=2)
    x = inputs(seed=3)
    spikes, q = neuroprop_spikes(net, x)
    graph = written(network_graph(net), tmp_path)
    # snnTorch's importer has no LI node: give it the graph up to the output layer's Linear
    nodes = {name: node for name, node in graph.nodes.items() if name != "li3"}
    edges = [edge for edge in graph.edges if "li3" not in edge] + [("output3", "output")]
    module = quiet(import_from_nir, nir.NIRGraph(nodes=nodes, edges=edges))
    theirs, mean_output = module_spikes(module, x.flatten(1), ["lif1", "lif2"],
                                        stateful=False)
    for index in (1, 2):
        assert torch.equal(spikes[index], theirs[f"lif{index}"])
    torch.testing.assert_close(mean_output, q, rtol=0, atol=1e-6)


def snntorch_net(hidden: int, alpha: float, beta: float) -> torch.nn.Sequential:
    torch.manual_seed(4)
    per_neuron = dict(alpha=torch.full((hidden,), alpha), beta=torch.full((hidden,), beta),
                      threshold=torch.full((hidden,), 1.0))
    net = torch.nn.Sequential(
        torch.nn.Linear(64, hidden, bias=False),
        snntorch.Synaptic(**per_neuron, init_hidden=True, reset_mechanism="zero",
                          reset_delay=False),
        torch.nn.Linear(hidden, 10, bias=False))
    with torch.no_grad():
        net[0].weight.mul_(4.0)
    return net


@pytest.mark.parametrize(("alpha", "beta"), [(0.5, 0.75), (0.0, 1.0)])
def test_snntorch_to_neuroprop_gives_snntorchs_spikes_and_outputs(alpha, beta, tmp_path):
    """A Synaptic net exported by snnTorch (per-neuron tensors, ignore_dims=[0]); beta = 1
    writes tau_mem = inf, read as dv = 0. The trailing Linear becomes the li read-out:
    neuroprop's q is the mean of snnTorch's output over the trial."""
    net = snntorch_net(24, alpha, beta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # snnTorch divides by 1 - beta = 0
        graph = export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])
    nir.write(tmp_path / "snn.nir", graph)
    out, _ = import_nir(tmp_path / "snn.nir", tmp_path / "imported")
    network = load_trained(out).network
    assert network.spec.layers[1].neuron.to_dict() == {
        "kind": "lif", "du": 1 - alpha, "dv": 1 - beta, "vth": 1.0}
    x = inputs(seed=5)
    spikes, q = neuroprop_spikes(network, x)
    net[1].reset_mem()
    theirs, mean_output = module_spikes(net, x.flatten(1), ["1"], stateful=False)
    assert torch.equal(spikes[1], theirs["1"]) and spikes[1].any()
    torch.testing.assert_close(q, mean_output, rtol=0, atol=1e-6)


def test_norse_to_neuroprop_runs_as_norse_runs_the_file(tmp_path):
    """norse 1.1.0's to_nir writes dt / tau_inv (the time constant times dt) and r = w_in = 1;
    imported with --dt dt^2 the decays per step are norse's, and neuroprop's spikes equal
    those of norse.from_nir on the same graph (its LIFCell without the NIR round trip adds
    its input without the factor du: another neuron, see docs/interchange.md)."""
    torch.manual_seed(6)
    hidden, dt = 30, 1e-3
    model = norse.SequentialState(
        torch.nn.Linear(64, hidden, bias=False),
        norse.LIFCell(norse.LIFParameters(
            tau_syn_inv=torch.full((hidden,), 200.0), tau_mem_inv=torch.full((hidden,), 100.0),
            v_th=torch.full((hidden,), 0.1), v_leak=torch.zeros(hidden))),
        torch.nn.Linear(hidden, 10, bias=False),
        norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.full((10,), 100.0),
                                              v_leak=torch.zeros(10))))
    graph = quiet(norse.to_nir, model, torch.zeros(1, 64), dt=dt)
    nir.write(tmp_path / "norse.nir", graph)
    out, report = import_nir(tmp_path / "norse.nir", tmp_path / "imported", dt=dt**2,
                             timesteps=T)
    network = load_trained(out).network
    lif = network.spec.layers[1].neuron
    assert (lif.du, lif.dv) == pytest.approx((0.2, 0.1)) and "weights x 0.02" in report
    x = inputs(seed=7)
    spikes, _ = neuroprop_spikes(network, x)
    module = quiet(norse.from_nir, read_graph(tmp_path / "norse.nir"), dt=dt**2)
    theirs, _ = module_spikes(module, x.flatten(1), ["1"], stateful=True)
    assert torch.equal(spikes[1], theirs["1"]) and spikes[1].any()
    np.testing.assert_allclose(network.layers[1].weight.detach().numpy(),
                               model[0].weight.detach().numpy() * 0.02, rtol=1e-6)
