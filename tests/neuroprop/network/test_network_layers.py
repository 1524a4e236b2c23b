"""Network forward semantics and misuse errors (the update itself: tests/neuroprop/rules)."""

from __future__ import annotations

import pytest
import torch

from neuroprop.errors import NeuropropError
from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.rules import brainprop_feedback

TIED = FeedbackOptions("tied", learn=True)


def build(layers: list[dict], input_shape=(2, 6, 6), feedback=TIED) -> Network:
    spec = parse_network({"init": {"distribution": "normal", "std": 0.3}, "layers": layers},
                         input_shape, 3)
    return Network(spec, feedback)


def test_no_biases_and_init_per_spec() -> None:
    torch.manual_seed(0)
    spec = parse_network({"init": {"distribution": "uniform", "limit": 0.02}, "layers": [
        {"type": "conv2d", "channels": 8, "kernel": 3}, {"type": "dense", "units": 50},
        {"type": "output"}]}, (1, 8, 8), 10)
    net = Network(spec, FeedbackOptions("random", learn=True))
    for name, parameter in net.named_parameters():
        assert "bias" not in name
        assert parameter.abs().max() <= 0.02 and parameter.abs().max() > 0.015, name
    conv = net.layers[0]
    assert not torch.equal(conv.weight, conv.feedback_weight)
    tied_frozen = Network(spec, FeedbackOptions("tied", learn=False))
    assert torch.equal(tied_frozen.layers[0].weight, tied_frozen.layers[0].feedback_weight)
    assert tied_frozen.layers[0].feedback_weight is not tied_frozen.layers[0].weight
    # tied feedback that learns gets the forward update, so it is the forward weight
    tied = Network(spec, FeedbackOptions("tied", learn=True))
    assert all(layer.feedback_weight is layer.weight for layer in tied.layers
               if hasattr(layer, "feedback_weight"))
    assert len(list(tied.parameters())) == 3


def test_batchnorm_is_a_gain_with_batch_then_running_statistics() -> None:
    torch.manual_seed(0)
    net = build([{"type": "conv2d", "channels": 3, "kernel": 3, "neuron": "linear"},
                 {"type": "batchnorm", "momentum": 0.5}, {"type": "output"}])
    conv, norm = net.layers[0], net.layers[1]
    with torch.no_grad():
        norm.gamma.copy_(torch.tensor([0.5, 2.0, -1.0]))
    x = torch.rand(5, 2, 6, 6)
    a = torch.nn.functional.conv2d(x, conv.weight).detach()
    m2 = a.square().mean((0, 2, 3))
    net.train()
    net(x)
    y_train = norm(a, False).detach()
    expected = a * (norm.gamma / torch.sqrt(m2 + 1e-5)).view(1, -1, 1, 1)
    torch.testing.assert_close(y_train, expected)  # no mean subtraction, no shift
    # two train passes with momentum 0.5 from running_m2 = 1: 0.25 + 0.75 m2
    torch.testing.assert_close(norm.running_m2, 0.25 + 0.75 * m2)
    net.eval()
    running = norm.running_m2.clone()
    y_eval = norm(a[:1], False).detach()
    torch.testing.assert_close(
        y_eval, a[:1] * (norm.gamma / torch.sqrt(running + 1e-5)).view(1, -1, 1, 1)
    )
    assert torch.equal(norm.running_m2, running)  # eval does not update it


def test_dropout_train_and_eval() -> None:
    torch.manual_seed(0)
    net = build([{"type": "dropout", "p": 0.25}, {"type": "output"}])
    x = torch.ones(400, 2, 6, 6)
    net.train()
    net(x)
    mask = net.layers[0].mask
    values = mask.unique()
    assert len(values) == 2 and values[0] == 0.0
    assert float(values[1]) == pytest.approx(1.0 / 0.75)
    assert abs(float((mask == 0).double().mean()) - 0.25) < 0.01
    net.eval()
    q_eval = net(x)
    assert net.layers[0].mask is None
    torch.testing.assert_close(q_eval, x.flatten(1) @ net.layers[2].weight.T)


def test_eval_forward_does_not_cache_and_feedback_then_refuses() -> None:
    net = build([{"type": "dense", "units": 4}, {"type": "output"}]).eval()
    q = net(torch.rand(3, 2, 6, 6))
    with pytest.raises(NeuropropError, match="no cached forward pass"):
        brainprop_feedback(net, torch.zeros_like(q), torch.zeros(3))
    net(torch.rand(3, 2, 6, 6), cache=True)
    brainprop_feedback(net, torch.zeros_like(q), torch.ones(3))
    net.clear_cache()
    with pytest.raises(NeuropropError, match="no cached forward pass"):
        brainprop_feedback(net, torch.zeros_like(q), torch.zeros(3))


def test_feedback_needs_feedback_weights() -> None:
    net = build([{"type": "output"}], feedback=None).train()
    q = net(torch.rand(2, 2, 6, 6))
    with pytest.raises(NeuropropError, match="no feedback weights"):
        brainprop_feedback(net, torch.zeros_like(q), torch.zeros(2))


def test_wrong_input_shape_is_a_one_line_error() -> None:
    net = build([{"type": "output"}])
    with pytest.raises(NeuropropError) as info:
        net(torch.rand(2, 1, 6, 6))
    assert str(info.value) == ("network input: expected samples of shape (2, 6, 6), got "
                               "(1, 6, 6); check the dataset matches the config")


def test_silent_units_and_unselected_outputs_get_no_update() -> None:
    """Zero attention gives zero updates; units with gate 0 get no update."""
    torch.manual_seed(0)
    net = build([{"type": "dropout", "p": 0.5}, {"type": "dense", "units": 6},
                 {"type": "output"}]).train()
    x = torch.rand(4, 2, 6, 6)
    q = net(x)
    phi = torch.zeros_like(q)
    phi[:, 1] = 1.0
    brainprop_feedback(net, phi, torch.ones(4))
    hidden = net.layers[2]
    silent = (hidden.pre @ hidden.weight.T <= 0).all(dim=0)  # units off for every trial
    assert silent.any() and torch.all(hidden.weight.grad[silent] == 0)
    out_grad = net.layers[3].weight.grad
    assert torch.all(out_grad[[0, 2]] == 0) and torch.any(out_grad[1] != 0)


def test_feedback_stops_at_the_lowest_learning_layer() -> None:
    """Nothing is propagated out of the lowest layer that learns, nor through any below."""
    torch.manual_seed(0)
    net = build([{"type": "dropout", "p": 0.5}, {"type": "dense", "units": 6},
                 {"type": "dense", "units": 5}, {"type": "output"}]).train()
    frozen = net.layers[2]
    frozen.weight.requires_grad_(False)
    frozen.feedback_weight.requires_grad_(False)
    calls = []
    for index, layer in enumerate(net.layers):
        def spy(post, index=index, original=layer.propagate):
            calls.append(index)
            return original(post)
        layer.propagate = spy
    q = net(torch.rand(4, 2, 6, 6))
    brainprop_feedback(net, torch.ones_like(q), torch.ones(4))
    assert calls == [4]  # only the output layer sends feedback down, to layer 3
    assert net.layers[3].weight.grad is not None and frozen.weight.grad is None


def test_feedback_checks_its_shapes() -> None:
    net = build([{"type": "output"}]).train()
    q = net(torch.rand(2, 2, 6, 6))
    with pytest.raises(NeuropropError, match=r"expected phi \(B, 3\) and delta \(B,\)"):
        brainprop_feedback(net, torch.zeros_like(q), torch.zeros(3))
