"""BrainProp.step end to end: it learns from reward alone, and divergence is a clear error."""

from __future__ import annotations

import pytest
import torch

from neuroprop.errors import NeuropropError
from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.rules import BrainProp


def make_net() -> Network:
    spec = parse_network({"init": {"distribution": "normal", "std": 0.1},
                          "layers": [{"type": "dense", "units": 32}, {"type": "output"}]},
                         (1, 2, 2), 3)
    return Network(spec, FeedbackOptions()).train()


def test_learns_from_reward_alone() -> None:
    torch.manual_seed(0)
    net = make_net()
    x = torch.rand(512, 1, 2, 2)
    y = x.flatten(1)[:, :3].argmax(dim=1)  # which of the first three pixels is brightest
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    rule = BrainProp(epsilon=0.1)
    first = None
    for _ in range(400):
        optimizer.zero_grad()
        result = rule.step(net, x, y)
        optimizer.step()
        first = result.reward_sum / result.count if first is None else first
    with torch.no_grad():
        accuracy = float((net.eval()(x).argmax(dim=1) == y).double().mean())
    assert first < 0.6 and accuracy > 0.9


def test_non_finite_q_values_are_a_one_line_error() -> None:
    net = make_net()
    x = torch.full((4, 1, 2, 2), float("inf"))
    with pytest.raises(NeuropropError, match="training diverged: the Q-values are not finite"):
        BrainProp().step(net, x, torch.zeros(4, dtype=torch.long))
