"""Feedback-weight options over many SGD updates."""

from __future__ import annotations

import pytest
import torch

from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.rules import BrainProp

LAYERS = [
    {"type": "conv2d", "channels": 3, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "batchnorm"},
    {"type": "loccon2d", "channels": 2, "kernel": 2},
    {"type": "dropout", "p": 0.2},
    {"type": "dense", "units": 12},
    {"type": "batchnorm"},
    {"type": "output"},
]
SPIKING = {"substrate": "spiking", "timesteps": 6, "encoding": "bernoulli",
           "layers": [layer for layer in LAYERS if layer["type"] != "batchnorm"]}
NETS = {"rate": {"layers": LAYERS}, "spiking": SPIKING}


def train(
    feedback: FeedbackOptions, steps: int, optimizer_options: dict, substrate: str = "rate"
) -> tuple[Network, dict[str, torch.Tensor]]:
    """The trained net and its initial parameters by name."""
    torch.manual_seed(0)
    spec = parse_network({"init": {"distribution": "normal", "std": 0.2}, **NETS[substrate]},
                         (1, 8, 8), 4)
    net = Network(spec, feedback).train()
    rule = BrainProp(epsilon=0.2)
    optimizer = torch.optim.SGD(net.parameters(), **optimizer_options)
    x = torch.rand(64, 1, 8, 8)
    y = (x[:, 0, :4].sum((1, 2)) > x[:, 0, 4:].sum((1, 2))).long() + 2 * (x[:, 0, 0, 0] > 0.5)
    initial = {name: p.detach().clone() for name, p in net.named_parameters()}
    for step in range(steps):
        batch = slice(16 * (step % 4), 16 * (step % 4 + 1))
        optimizer.zero_grad()
        rule.step(net, x[batch], y[batch])
        optimizer.step()
    return net, initial


def weight_pairs(net: Network):
    for layer in net.layers:
        if getattr(layer, "feedback_weight", None) is not None:
            yield layer.weight, layer.feedback_weight


@pytest.mark.parametrize("substrate", ["rate", "spiking"])
def test_tied_learning_feedback_stays_exactly_equal(substrate: str) -> None:
    net, initial = train(FeedbackOptions("tied", learn=True), 200,
                         {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": True},
                         substrate)
    pairs = list(weight_pairs(net))
    assert len(pairs) == 4
    for index, (weight, feedback_weight) in enumerate(pairs):
        assert not torch.equal(weight, initial[_name(net, weight)]), index
        assert torch.equal(weight, feedback_weight), index


def test_random_learning_feedback_keeps_its_initial_offset() -> None:
    """Same update for W and B (no weight decay): W - B stays W0 - B0 (Kolen-Pollack-like)."""
    net, initial = train(FeedbackOptions("random", learn=True), 30, {"lr": 0.05})
    for weight, feedback_weight in weight_pairs(net):
        name = _name(net, weight)
        initial_offset = initial[name] - initial[name.replace("weight", "feedback_weight")]
        assert not torch.allclose(weight, initial[name])
        torch.testing.assert_close(weight - feedback_weight, initial_offset, rtol=0, atol=1e-5)


def test_tied_frozen_feedback_stays_at_the_initial_weights() -> None:
    net, initial = train(FeedbackOptions("tied", learn=False), 20, {"lr": 0.05})
    for weight, feedback_weight in weight_pairs(net):
        name = _name(net, weight)
        assert torch.equal(feedback_weight, initial[name])
        assert not torch.equal(weight, initial[name])


def _name(net: Network, parameter: torch.Tensor) -> str:
    return next(name for name, p in net.named_parameters() if p is parameter)
