"""snnTorch -> NIR -> neuroprop -> Lava on the sklearn digits.

A current-based snnTorch net (64 Synaptic neurons: alpha 0.5, beta 0.75, threshold 1,
reset to zero; Loihi's decays du = 0.5, dv = 0.25 exactly) with fixed random input
weights and a read-out fitted by ridge regression on its spike rates (trained in
snnTorch's world, no neuroprop involved), exported by snnTorch's own exporter, imported,
quantised to Loihi fixed point and run on Lava's simulator. Measured on the 359 test
digits: snnTorch 86.6 %, the imported net's Q-values equal snnTorch's outputs exactly,
Lava fixed point 86.6 % with the same argmax as snnTorch on 98.9 % of the samples and
bit-exact with neuroprop's integer model.
"""

from __future__ import annotations

import json
import warnings

import nir
import numpy as np
import pytest
import torch

from hardware.emulator import forward_fixed
from hardware.format import load_export
from neuroprop.cli import main
from neuroprop.data import load_dataset
from neuroprop.deploy.export import export_run
from neuroprop.deploy.lava_env import lava_python, run_in_lava_env
from neuroprop.errors import NeuropropError
from neuroprop.interchange.nir_import import import_nir
from neuroprop.training.trainer import load_trained

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import snntorch
    from snntorch.export_nir import export_to_nir

HIDDEN, T = 64, 16


def lava_available() -> bool:
    try:
        lava_python()
    except NeuropropError:
        return False
    return True


def snntorch_net(w_in: torch.Tensor, w_out: torch.Tensor) -> torch.nn.Sequential:
    net = torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN, bias=False),
        snntorch.Synaptic(alpha=torch.full((HIDDEN,), 0.5), beta=torch.full((HIDDEN,), 0.75),
                          threshold=torch.full((HIDDEN,), 1.0), init_hidden=True,
                          reset_mechanism="zero", reset_delay=False),
        torch.nn.Linear(HIDDEN, 10, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(w_in)
        net[2].weight.copy_(w_out)
    return net


@torch.no_grad()
def simulate(net: torch.nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """snnTorch's own run of T steps on the constant input: hidden rates, mean output."""
    net[1].reset_mem()
    rates = outputs = 0
    for _ in range(T):
        spikes = net[1](net[0](x))
        rates = rates + spikes
        outputs = outputs + net[2](spikes)
    return rates / T, outputs / T


@pytest.fixture(scope="module")
def digits_net(tmp_path_factory):
    """The snnTorch net, its test outputs and its neuroprop import."""
    digits = load_dataset("digits")
    torch.manual_seed(0)
    w_in = torch.randn(HIDDEN, 64) * 0.6
    x_train = digits.train.x.float().flatten(1) * digits.scale
    rates, _ = simulate(snntorch_net(w_in, torch.zeros(10, HIDDEN)), x_train)
    targets = torch.nn.functional.one_hot(digits.train.y, 10).float()
    w_out = torch.linalg.solve(rates.T @ rates + 1e-2 * torch.eye(HIDDEN), rates.T @ targets).T
    net = snntorch_net(w_in, w_out)
    _, q_snn = simulate(net, digits.test.x.float().flatten(1) * digits.scale)
    folder = tmp_path_factory.mktemp("snntorch")
    with warnings.catch_warnings():  # nirtorch deprecates the API snnTorch 1.0 calls
        warnings.simplefilter("ignore")
        graph = export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])
    nir.write(folder / "digits.nir", graph)
    imported, _ = import_nir(folder / "digits.nir", folder / "imported", timesteps=T)
    return digits, q_snn, imported


def test_the_imported_net_computes_snntorchs_outputs(digits_net):
    digits, q_snn, imported = digits_net
    exp = load_trained(imported)
    assert exp.spec.layers[1].neuron.to_dict() == {"kind": "lif", "du": 0.5, "dv": 0.25,
                                                   "vth": 1.0}
    with torch.no_grad():
        q = exp.network(digits.test.x.float() * digits.scale)
    torch.testing.assert_close(q, q_snn, rtol=0, atol=1e-6)
    assert (q_snn.argmax(1) == digits.test.y).float().mean() > 0.8


@pytest.mark.skipif(not lava_available(), reason="no Lava environment (.venv-lava or "
                    "$NEUROPROP_LAVA_PYTHON) on this machine")
def test_on_lava_it_agrees_with_snntorch(digits_net):
    digits, q_snn, imported = digits_net
    export_dir, _ = export_run(imported)
    x_int = digits.test.x.numpy()
    q_lava = run_in_lava_env(export_dir, x_int).q
    np.testing.assert_array_equal(q_lava, forward_fixed(load_export(export_dir), x_int))
    agreement = (q_lava.argmax(1) == q_snn.argmax(1).numpy()).mean()
    assert agreement >= 0.97
    lava_accuracy = (q_lava.argmax(1) == digits.test.y.numpy()).mean()
    snn_accuracy = (q_snn.argmax(1) == digits.test.y).float().mean().item()
    assert abs(lava_accuracy - snn_accuracy) <= 0.02


def test_brainprop_fine_tuning_starts_from_the_import(digits_net, tmp_path):
    """One epoch at a learning rate of 1e-9 leaves the imported weights as they are: the
    run's test accuracy is snnTorch's."""
    digits, q_snn, imported = digits_net
    run = tmp_path / "run"
    assert main(["train", "--no-progress", "--config", str(imported / "config.yaml"),
                 "--run-dir", str(run), "--init-from", str(imported), "optimizer.lr=1e-9",
                 "training.max_epochs=1"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    snn_accuracy = (q_snn.argmax(1) == digits.test.y).float().mean().item()
    assert summary["test_accuracy"] == pytest.approx(snn_accuracy, abs=1e-6)  # 1 sample: 3e-3
