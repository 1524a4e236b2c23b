"""``neuroprop learn``: on-chip BrainProp equals neuroprop's torch BrainProp (float), the
command's outputs and errors, and a pretrained net learning new classes from reward."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hardware.format import load_export, save_export
from hardware.graph import HardwareNetwork, Layer
from hardware.onchip.model import learn
from hardware.onchip.plan import load_plan, plan_learning
from hardware.quantize import quantise
from neuroprop.cli import main
from neuroprop.deploy.export import export_run
from neuroprop.deploy.lava_env import REPO_ROOT
from neuroprop.deploy.learn import learn_in_lava_env
from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.rules.brainprop import brainprop_feedback

needs_lava = pytest.mark.skipif(
    not (REPO_ROOT / ".venv-lava" / "bin" / "python").exists(),
    reason="the Lava environment .venv-lava is absent (run 'bash scripts/setup.sh')",
)
TRIALS, LR = 200, 0.05


SPIKING = {"substrate": "spiking", "timesteps": 6, "encoding": "constant",
           "neuron": {"kind": "lif", "du": 1.0, "dv": 0.0, "vth": 1.0},
           "init": {"distribution": "normal", "std": 0.15},
           "layers": [{"type": "dense", "units": 32},
                      {"type": "output", "neuron": {"kind": "li", "du": 1.0, "dv": 0.0}}]}
RATE = {"substrate": "rate", "init": {"distribution": "normal", "std": 0.1},
        "layers": [{"type": "dense", "units": 32}, {"type": "output"}]}


def _pair(seed: int = 0, substrate: str = "rate") -> tuple[Network, HardwareNetwork]:
    """A torch BrainProp net (float64, tied learning feedback) and its hardware twin."""
    torch.manual_seed(seed)
    spec = parse_network(RATE if substrate == "rate" else SPIKING, (1, 8, 8), 10)
    net = Network(spec, FeedbackOptions("tied", learn=True)).double()
    layers = [Layer(**{key: entry[key] for key in
                       ("type", "in_shape", "out_shape", "neuron", "weight") if key in entry})
              for entry in net.export_layers()]
    return net, HardwareNetwork(input_shape=(1, 8, 8), input_scale=1 / 16, layers=layers,
                                substrate=spec.substrate, timesteps=spec.timesteps)


def _trials(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = (rng.integers(0, 17, (count, 1, 8, 8)) * (rng.random((count, 1, 8, 8)) < 0.6))
    return x.astype(np.uint8), rng.integers(0, 10, count), rng.integers(0, 10, count)


def _torch_brainprop(net: Network, x: np.ndarray, labels: np.ndarray,
                     actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """neuroprop's BrainProp, one trial per step (batch 1, SGD): rewards and Q-values."""
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=LR)
    rewards, qs = [], []
    for sample, label, action in zip(x, labels, actions, strict=True):
        q = net(torch.from_numpy(sample[None].astype(np.float64) / 16), cache=True)
        reward = float(action == label)
        phi = torch.zeros_like(q)
        phi[0, action] = 1.0
        brainprop_feedback(net, phi, reward - q[0, action].reshape(1))
        optimizer.step()
        rewards.append(reward)
        qs.append(q[0].detach().numpy())
    return np.array(rewards), np.array(qs)


def _assert_same_learning(net: Network, learned, rewards, q, record) -> None:
    np.testing.assert_array_equal(record.rewards, rewards)
    np.testing.assert_allclose(record.q, q, rtol=0, atol=1e-5)
    hidden, output = (layer for layer in net.layers if hasattr(layer, "weight"))
    weights = learned.float_weights()
    np.testing.assert_allclose(weights["hidden"], hidden.weight.detach(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(weights["output"], output.weight.detach(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(weights["feedback"].T, output.feedback_weight.detach(), rtol=0,
                               atol=1e-5)


@pytest.mark.parametrize("substrate", ["rate", "spiking"])
def test_the_float_model_is_torch_brainprop_trial_by_trial(substrate):
    """Spiking: torch's eligibility-trace BrainProp (docs/spiking.md), IF neurons."""
    net, hardware = _pair(0, substrate)
    x, labels, actions = _trials(TRIALS)
    plan = plan_learning(hardware, fixed=False, learning_rate=LR)
    learned, record = learn(plan, x, labels, actions)
    rewards, q = _torch_brainprop(net, x, labels, actions)
    _assert_same_learning(net, learned, rewards, q, record)


@needs_lava
@pytest.mark.parametrize("substrate", ["rate", "spiking"])
def test_lava_floating_point_learning_is_torch_brainprop_over_200_trials(substrate):
    net, hardware = _pair(1, substrate)
    x, labels, actions = _trials(TRIALS)
    plan = plan_learning(hardware, fixed=False, learning_rate=LR)
    learned, record, seconds = learn_in_lava_env(plan, x, labels, actions)
    rewards, q = _torch_brainprop(net, x, labels, actions)
    _assert_same_learning(net, learned, rewards, q, record)
    assert seconds > 0


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A digits net trained on classes 0-4 only, and its export."""
    run = tmp_path_factory.mktemp("learn") / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=20",
                 "dataset.classes=[0,1,2,3,4]"]) == 0
    export_dir, _ = export_run(run)
    return run, export_dir


def test_learn_on_the_model_writes_a_run_and_learns_new_classes(pretrained, tmp_path, capsys):
    run, export_dir = pretrained
    out = tmp_path / "learned"
    assert main(["learn", "--target", "model", str(export_dir), "--epochs", "2", "--lr", "0.02",
                 "--out", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    summary = json.loads((out / "learn_summary.json").read_text())
    before, after = summary["test_accuracy_before"], summary["test_accuracy_after"]
    assert before["new_classes"] < 0.05 and after["new_classes"] > 0.5
    assert after["pretrained_classes"] > 0.85 and after["all"] > before["all"] + 0.2
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert len(lines) == summary["trials"] and summary["epochs"] == 2
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert (first["epoch"], last["epoch"]) == (0, 1)
    assert set(first) == {"trial", "epoch", "label", "action", "reward", "q_action", "rpe"}
    assert (out / "reward.png").stat().st_size > 0
    # the output is a run: its export holds the learned weights for every class
    exported = load_export(out / "export-lava")
    assert exported.metadata["dataset"]["classes"] is None
    assert main(["evaluate", str(out)]) == 0
    # the run holds the chip's learned forward weights (tied feedback is the same tensor)
    learned = load_plan(out / "plan").float_weights()
    saved = torch.load(out / "best.pt", weights_only=True)["model"]
    hidden_name, output_name = sorted(name for name in saved if name.endswith(".weight"))
    np.testing.assert_allclose(saved[hidden_name].numpy(), learned["hidden"], rtol=1e-6)
    np.testing.assert_allclose(saved[output_name].numpy(), learned["output"], rtol=1e-6)


@needs_lava
def test_learn_on_lava_in_fixed_point_matches_the_model(pretrained, tmp_path):
    _, export_dir = pretrained
    outputs = {}
    for target in ("lava", "model"):
        outputs[target] = tmp_path / target
        assert main(["learn", "--target", target, str(export_dir), "--limit", "60",
                     "--out", str(outputs[target]), "--seed", "2"]) == 0
    lava, model = ((outputs[t] / "trials.jsonl").read_text() for t in ("lava", "model"))
    assert lava == model
    with np.load(outputs["lava"] / "plan" / "weights.npz") as a, \
            np.load(outputs["model"] / "plan" / "weights.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


def test_learn_errors_are_one_line(pretrained, tmp_path, capsys, make_two_hidden_export):
    _, export_dir = pretrained
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    cases = [
        (["--out", str(out)], "already exists and is not empty"),
        (["--classes", "5,x", "--out", str(tmp_path / "a")], "--classes 5,x"),
        (["--epochs", "0", "--out", str(tmp_path / "b")], "--epochs 0"),
        (["--scratch", "-1", "--out", str(tmp_path / "c")], "--scratch -1"),
    ]
    for extra, message in cases:
        assert main(["learn", "--target", "model", str(export_dir), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert (out / "mine.txt").read_text() == "user data"
    assert main(["learn", "--target", "model", str(make_two_hidden_export(tmp_path)),
                 "--out", str(tmp_path / "d")]) == 2
    assert "dense(relu) -> dense(linear)" in capsys.readouterr().err


@pytest.fixture
def make_two_hidden_export(pretrained):
    def make(folder):
        net = load_export(pretrained[1])
        hidden = net.layers[-2]
        extra = Layer(type="dense", in_shape=hidden.out_shape, out_shape=hidden.out_shape,
                      neuron={"kind": "relu"},
                      weight=np.eye(hidden.out_shape[0], dtype=np.float32))
        float_net = HardwareNetwork(input_shape=net.input_shape, input_scale=net.input_scale,
                                    layers=[*[Layer(type=layer.type, in_shape=layer.in_shape,
                                                    out_shape=layer.out_shape,
                                                    neuron=layer.neuron, weight=layer.weight)
                                              for layer in net.layers[:-1]], extra,
                                            Layer(type="dense",
                                                  in_shape=net.layers[-1].in_shape,
                                                  out_shape=net.layers[-1].out_shape,
                                                  neuron=net.layers[-1].neuron,
                                                  weight=net.layers[-1].weight)],
                                    metadata=net.metadata)
        x = np.random.default_rng(0).integers(0, 17, (32, *net.input_shape)).astype(np.uint8)
        return save_export(quantise(float_net, x), folder / "two-hidden")
    return make


@needs_lava
def test_a_spiking_export_learns_on_lava_as_on_the_model(tmp_path):
    run = tmp_path / "spiking"
    assert main(["train", "--config", "configs/digits_spiking.yaml", "--run-dir", str(run),
                 "--no-progress", "training.max_epochs=3", "network.timesteps=8"]) == 0
    export_dir, _ = export_run(run)
    outputs = {target: tmp_path / target for target in ("lava", "model")}
    for target, out in outputs.items():
        assert main(["learn", "--target", target, str(export_dir), "--limit", "40",
                     "--out", str(out), "--seed", "1"]) == 0
    assert (outputs["lava"] / "trials.jsonl").read_text() == (
        outputs["model"] / "trials.jsonl").read_text()
    summary = json.loads((outputs["lava"] / "learn_summary.json").read_text())
    assert summary["plan"]["substrate"] == "spiking" and summary["plan"]["trial_steps"] == 11
    assert load_export(outputs["lava"] / "export-lava").substrate == "spiking"
