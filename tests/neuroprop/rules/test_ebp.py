"""The EBP baseline: cross-entropy gradients by autograd, written fresh each step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuroprop.network import Network, parse_network
from neuroprop.rules import Autograd, make_rule

LAYERS = [{"type": "conv2d", "channels": 3, "kernel": 3}, {"type": "batchnorm"},
          {"type": "dense", "units": 10}, {"type": "output"}]


def make_net() -> Network:
    spec = parse_network({"init": {"distribution": "normal", "std": 0.3}, "layers": LAYERS},
                         (1, 6, 6), 3)
    return Network(spec, feedback=None).double().eval()  # eval: no dropout/batch statistics


def test_step_writes_cross_entropy_gradients_without_accumulating() -> None:
    torch.manual_seed(0)
    net = make_net()
    assert not any("feedback" in name for name, _ in net.named_parameters())
    x = torch.rand(8, 1, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (8,))
    rule = make_rule("ebp")
    assert isinstance(rule, Autograd)
    rule.step(net, x, y)
    result = rule.step(net, x, y)  # a second step overwrites, it does not add
    q = net(x)
    loss = F.cross_entropy(q, y)
    expected = torch.autograd.grad(loss, list(net.parameters()))
    for parameter, grad in zip(net.parameters(), expected, strict=True):
        torch.testing.assert_close(parameter.grad, grad)
    assert result.count == 8
    assert result.reward_sum == float((q.detach().argmax(1) == y).sum())
    assert abs(result.loss_sum - 8 * loss.detach().item()) < 1e-9


def test_ebp_learns_a_separable_task() -> None:
    torch.manual_seed(1)
    spec = parse_network({"init": {"distribution": "normal", "std": 0.1},
                          "layers": [{"type": "dense", "units": 16}, {"type": "output"}]},
                         (1, 2, 2), 2)
    net = Network(spec).train()
    x = torch.rand(256, 1, 2, 2)
    y = (x[:, 0, 0, 0] > x[:, 0, 1, 1]).long()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    rule = Autograd("ebp")
    for _ in range(300):
        optimizer.zero_grad()
        result = rule.step(net, x, y)
        optimizer.step()
    assert result.reward_sum / result.count > 0.9
