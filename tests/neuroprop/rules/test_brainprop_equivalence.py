"""BrainProp's explicit feedback pass == autograd of E = sum_b 1/2 (r_b - q_{s_b})^2 / B.

The autograd reference is an independent functional forward written here (loccon as an
explicit loop over output positions, batch norm with its statistic held constant), run
with the network's parameters and the dropout masks the network cached, with the actions
the rule chose held fixed.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reference_ops import synapse

from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.rules import BrainProp, max_boltzmann

INIT = {"distribution": "normal", "std": 0.3}
NETS = {
    "dense": ((1, 5, 5), [
        {"type": "dense", "units": 12},
        {"type": "dense", "units": 9, "neuron": "linear"},
        {"type": "dense", "units": 8},
        {"type": "output"},
    ]),
    "conv": ((2, 9, 9), [
        {"type": "conv2d", "channels": 4, "kernel": 3, "stride": 2, "padding": 1},
        {"type": "conv2d", "channels": 3, "kernel": [3, 2], "stride": 1},
        {"type": "dense", "units": 10},
        {"type": "output"},
    ]),
    "loccon": ((2, 8, 8), [
        {"type": "loccon2d", "channels": 3, "kernel": 3, "stride": 1},
        {"type": "locallyconnected2d", "channels": 4, "kernel": 2, "stride": 2},
        {"type": "output"},
    ]),
    "maxpool": ((2, 8, 8), [
        {"type": "conv2d", "channels": 4, "kernel": 3, "padding": 1},
        {"type": "maxpool2d", "kernel": 3, "stride": 2},  # overlapping windows
        {"type": "conv2d", "channels": 3, "kernel": 2},
        {"type": "maxpool2d", "kernel": 2},
        {"type": "output"},
    ]),
    "dropout": ((1, 6, 6), [
        {"type": "conv2d", "channels": 3, "kernel": 3},
        {"type": "dropout", "p": 0.3},
        {"type": "dense", "units": 16},
        {"type": "dropout", "p": 0.5},
        {"type": "output"},
    ]),
    "batchnorm": ((2, 8, 8), [
        {"type": "batchnorm"},
        {"type": "conv2d", "channels": 4, "kernel": 3, "stride": 2, "padding": 1},
        {"type": "batchnorm"},
        {"type": "loccon2d", "channels": 3, "kernel": 2},
        {"type": "batchnorm", "eps": 1e-3},
        {"type": "maxpool2d", "kernel": 2},
        {"type": "dense", "units": 12},
        {"type": "batchnorm"},
        {"type": "dropout", "p": 0.2},
        {"type": "output"},
    ]),
}
NUM_CLASSES = 4
EPSILON = 0.3  # explore often, so non-greedy actions are covered too


def build(name: str, feedback: FeedbackOptions) -> Network:
    input_shape, layers = NETS[name]
    spec = parse_network({"init": INIT, "layers": layers}, input_shape, NUM_CLASSES)
    return Network(spec, feedback).double().train()


def reference_q(net: Network, x: torch.Tensor) -> torch.Tensor:
    """Q-values by plain differentiable ops on the network's parameters and cached masks."""
    for layer in net.layers:
        spec = layer.spec
        if spec.type in ("dense", "output", "conv2d", "loccon2d"):
            x = synapse(x, layer)
        elif spec.type == "batchnorm":
            dims = (0,) if x.dim() == 2 else (0, 2, 3)
            m2 = x.detach().square().mean(dims)  # the gain is a constant for the rule
            shape = (1, -1) + (1,) * (x.dim() - 2)
            x = x * (layer.gamma / torch.sqrt(m2 + spec.eps)).view(shape)
        elif spec.type == "dropout":
            x = x * layer.mask
        elif spec.type == "maxpool2d":
            x = F.max_pool2d(x, spec.kernel, spec.stride)
        elif spec.type == "flatten":
            x = x.flatten(1)
        if getattr(spec, "neuron", None) is not None and spec.neuron.kind == "relu":
            x = torch.relu(x)
    return x


def trainable(net: Network) -> dict[str, torch.nn.Parameter]:
    return {
        name: p for name, p in net.named_parameters()
        if p.requires_grad and "feedback_weight" not in name
    }


def rule_step_and_reference(net, rule, x, y, seed):
    """Run the rule's step; replay its forward and selection with the same seed (same
    dropout masks, same actions) and return (rule grads, autograd grads, result, q, s)."""
    torch.manual_seed(seed)
    result = rule.step(net, x, y)
    rule_grads = {name: p.grad.clone() for name, p in trainable(net).items()}
    torch.manual_seed(seed)
    with torch.no_grad():
        q = net(x)
        actions = max_boltzmann(q, rule.epsilon, rule.temperature)
    q_ref = reference_q(net, x)
    torch.testing.assert_close(q_ref.detach(), q, rtol=1e-10, atol=1e-12)
    wrong, correct = rule.reward
    reward = torch.where(actions == y, correct, wrong).double()
    delta = reward - q_ref.gather(1, actions[:, None]).squeeze(1)
    energy = 0.5 * delta.square().sum() / len(x)
    params = trainable(net)
    ref_grads = dict(zip(params, torch.autograd.grad(energy, list(params.values())),
                         strict=True))
    return rule_grads, ref_grads, result, delta.detach(), reward


@pytest.mark.parametrize("name", sorted(NETS))
def test_update_equals_autograd_over_several_batches(name: str) -> None:
    torch.manual_seed(0)
    net = build(name, FeedbackOptions("tied", learn=True))
    input_shape = net.spec.input_shape
    rule = BrainProp(epsilon=EPSILON, temperature=1.0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    for batch in range(4):
        x = torch.rand(16, *input_shape, dtype=torch.float64)
        y = torch.randint(0, NUM_CLASSES, (16,))
        optimizer.zero_grad()
        rule_grads, ref_grads, result, delta, reward = rule_step_and_reference(
            net, rule, x, y, seed=100 + batch
        )
        for param_name, ref in ref_grads.items():
            assert ref.abs().max() > 0, f"{param_name}: reference gradient is all zero"
            torch.testing.assert_close(rule_grads[param_name], ref, rtol=1e-9, atol=1e-12,
                                       msg=lambda m, p=param_name: f"{p}: {m}")
        assert result.count == 16
        assert result.reward_sum == pytest.approx(float(reward.sum()))
        assert result.loss_sum == pytest.approx(0.5 * float(delta.square().sum()))
        for param_name, p in trainable(net).items():
            p.grad = rule_grads[param_name]
        optimizer.step()


@pytest.mark.parametrize("name", ["dense", "batchnorm"])
def test_shifted_rewards_give_autograd_of_the_shifted_error(name: str) -> None:
    """Optimistic rewards (wrong -1, correct 0): the same equivalence with r in {-1, 0};
    the step still reports the rewarded trials (the correct actions)."""
    torch.manual_seed(0)
    net = build(name, FeedbackOptions("tied", learn=True))
    rule = BrainProp(epsilon=EPSILON, temperature=1.0, reward=(-1.0, 0.0))
    x = torch.rand(16, *net.spec.input_shape, dtype=torch.float64)
    y = torch.randint(0, NUM_CLASSES, (16,))
    rule_grads, ref_grads, result, delta, reward = rule_step_and_reference(net, rule, x, y, 5)
    assert set(reward.tolist()) <= {-1.0, 0.0} and (reward == 0).any()
    assert result.reward_sum == float((reward == 0).sum())
    assert result.loss_sum == pytest.approx(0.5 * float(delta.square().sum()))
    for param_name, ref in ref_grads.items():
        torch.testing.assert_close(rule_grads[param_name], ref, rtol=1e-9, atol=1e-12)


def test_random_frozen_feedback_is_feedback_alignment() -> None:
    torch.manual_seed(1)
    net = build("batchnorm", FeedbackOptions("random", learn=False))
    feedback_before = {name: p.detach().clone() for name, p in net.named_parameters()
                       if "feedback_weight" in name}
    assert feedback_before and not any(
        p.requires_grad for name, p in net.named_parameters() if "feedback_weight" in name
    )
    rule = BrainProp(epsilon=EPSILON, temperature=1.0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    x = torch.rand(16, *net.spec.input_shape, dtype=torch.float64)
    y = torch.randint(0, NUM_CLASSES, (16,))
    for batch in range(3):
        optimizer.zero_grad()
        rule_grads, ref_grads, _, _, _ = rule_step_and_reference(net, rule, x, y, 7 + batch)
        optimizer.step()
    output_name = f"layers.{len(net.layers) - 1}.weight"
    # the top layer's update does not depend on feedback weights; every one below does
    torch.testing.assert_close(rule_grads[output_name], ref_grads[output_name])
    for name in ref_grads:
        if name != output_name:
            assert not torch.allclose(rule_grads[name], ref_grads[name], rtol=1e-3), name
    for name, p in net.named_parameters():
        if "feedback_weight" in name:
            assert p.grad is None
            assert torch.equal(p.detach(), feedback_before[name])
