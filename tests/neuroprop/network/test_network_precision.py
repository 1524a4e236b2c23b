"""``network.precision: bfloat16``: the products take bfloat16 operands, everything else
stays float32, and BrainProp's update stays the float32 update up to bfloat16 rounding."""

from __future__ import annotations

import pytest
import torch

from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.rules import Autograd, BrainProp

NETS = {
    "dense": ((1, 8, 8), [
        {"type": "dense", "units": 48},
        {"type": "dropout", "p": 0.2},
        {"type": "dense", "units": 32},
        {"type": "output"},
    ]),
    "conv": ((1, 10, 10), [
        {"type": "conv2d", "channels": 6, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "conv2d", "channels": 6, "kernel": 3, "stride": 2, "padding": 1},
        {"type": "dense", "units": 24},
        {"type": "output"},
    ]),
    "loccon": ((2, 9, 9), [
        {"type": "loccon2d", "channels": 5, "kernel": 3},
        {"type": "batchnorm"},
        {"type": "loccon2d", "channels": 4, "kernel": 3, "stride": 2},
        {"type": "output"},
    ]),
}
NUM_CLASSES = 5
FEEDBACK = FeedbackOptions("tied", learn=True)


def build(name: str, precision: str, feedback: FeedbackOptions | None = FEEDBACK) -> Network:
    input_shape, layers = NETS[name]
    raw = {"init": {"distribution": "normal", "std": 0.3}, "layers": layers,
           "precision": precision}
    return Network(parse_network(raw, input_shape, NUM_CLASSES), feedback).train()


def twins(name: str, feedback: FeedbackOptions | None = FEEDBACK) -> tuple[Network, Network]:
    """A float32 and a bfloat16 net with the same weights."""
    torch.manual_seed(0)
    single = build(name, "float32", feedback)
    half = build(name, "bfloat16", feedback)
    half.load_state_dict(single.state_dict())
    return single, half


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a.flatten(), b.flatten()) / (a.norm() * b.norm()))


def grads_of_one_step(net: Network, rule, x: torch.Tensor, y: torch.Tensor
                      ) -> dict[str, torch.Tensor]:
    for p in net.parameters():
        p.grad = None
    torch.manual_seed(3)  # the same dropout masks and explored actions in both nets
    rule.step(net, x, y)
    return {name: p.grad.clone() for name, p in net.named_parameters()
            if p.grad is not None}


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("local", [True, False], ids=["brainprop", "autograd"])
def test_bfloat16_update_is_the_float32_update_up_to_rounding(name: str, local: bool) -> None:
    """Greedy actions (the same in both nets). bfloat16 keeps 8 significant bits (about
    0.5 % relative error per update measured on one trial); a ReLU whose input rounds
    across 0 flips its gate, which changes that unit's update entirely, so the updates
    are compared by direction and size, not element by element."""
    rule = BrainProp(epsilon=0.0) if local else Autograd("ebp")
    feedback = FEEDBACK if local else None
    single, half = twins(name, feedback)
    x = torch.rand(16, *single.spec.input_shape)
    y = torch.randint(0, NUM_CLASSES, (16,))
    exact = grads_of_one_step(single, rule, x, y)
    rounded = grads_of_one_step(half, rule, x, y)
    assert rounded.keys() == exact.keys() and len(exact) >= 3
    for key, grad in exact.items():
        assert rounded[key].dtype == torch.float32, key
        assert cosine(rounded[key], grad) > 0.99, key
        assert float(rounded[key].norm() / grad.norm()) == pytest.approx(1.0, abs=0.05), key
    hidden = [key for key in exact if not key.startswith(f"layers.{len(single.layers) - 1}.")]
    assert any(not torch.equal(rounded[key], exact[key]) for key in hidden), (
        "the hidden layers' updates are bit-identical: bfloat16 was not used")


def test_the_output_layer_computes_in_float32() -> None:
    """A net of one output layer gives the same Q-values in either precision, to the bit
    (the reward-prediction error r - Q needs Q's float32 resolution)."""
    torch.manual_seed(0)
    raw = {"layers": [{"type": "output"}]}
    single = Network(parse_network(raw, (1, 8, 8), NUM_CLASSES))
    half = Network(parse_network({**raw, "precision": "bfloat16"}, (1, 8, 8), NUM_CLASSES))
    half.load_state_dict(single.state_dict())
    x = torch.rand(16, 1, 8, 8)
    assert torch.equal(half(x, cache=False), single(x, cache=False))


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("fused", [True, False], ids=["fused Adam", "Adam"])
def test_every_pass_uses_the_weights_of_the_last_optimizer_step(name: str, fused: bool
                                                                 ) -> None:
    """The bfloat16 cast of a weight is made again by every forward pass (fused Adam
    updates weights in place without bumping their version): after training steps, the
    net's Q-values (without autograd, as evaluation runs) and its next update equal those
    of a fresh net loaded with its weights."""
    _, half = twins(name)
    optimizer = torch.optim.Adam(half.parameters(), lr=0.05, fused=fused)
    x = torch.rand(32, *half.spec.input_shape)
    y = torch.randint(0, NUM_CLASSES, (32,))
    rule = BrainProp(epsilon=0.3)
    with torch.no_grad():
        before = half.eval()(x)
    for _ in range(2):
        grads_of_one_step(half.train(), rule, x, y)
        optimizer.step()
    fresh = build(name, "bfloat16")
    fresh.load_state_dict(half.state_dict())
    with torch.no_grad():
        after = half.eval()(x)
        assert not torch.equal(after, before)
        assert torch.equal(after, fresh.eval()(x))
    stepped, loaded = (grads_of_one_step(net.train(), rule, x, y) for net in (half, fresh))
    for key, grad in loaded.items():
        assert torch.equal(stepped[key], grad), key


def test_precision_round_trips_through_the_spec() -> None:
    input_shape, layers = NETS["conv"]
    spec = parse_network({"layers": layers, "precision": "bfloat16"}, input_shape, 10)
    assert spec.precision == "bfloat16"
    assert spec.to_dict()["precision"] == "bfloat16"
    assert parse_network(spec.to_dict(), input_shape, 10) == spec
    assert "precision" not in parse_network({"layers": layers}, input_shape, 10).to_dict()
