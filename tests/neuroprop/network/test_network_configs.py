"""Every experiment in configs/ parses, builds and runs forward (network + rule sections)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from neuroprop.network import Network, parse_network
from neuroprop.rules import needs_feedback, rule_options_from_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
INPUTS = {  # dataset: (input shape, classes)
    "digits": ((1, 8, 8), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "tiny_imagenet": ((3, 64, 64), 200),
}
EXPECTED = {
    "digits_dense", "mnist_dense", "mnist_conv", "mnist_loccon", "fashion_mnist_dense",
    "fashion_mnist_conv", "cifar10_conv", "cifar10_loccon", "cifar10_deep", "cifar100_conv",
    "cifar100_loccon", "cifar100_deep", "tiny_imagenet_deep",
    "digits_spiking", "mnist_dense_spiking", "mnist_conv_spiking",
    "mnist_dense_reference", "mnist_dense_paper_text", "mnist_conv_reference",
    "mnist_loccon_reference",
}
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_every_paper_experiment_has_a_config() -> None:
    assert EXPECTED <= {path.stem for path in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_config_builds_a_network_for_both_rules(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert set(raw) <= {"name", "dataset", "network", "rule", "optimizer", "schedule",
                        "training"}
    input_shape, num_classes = INPUTS[raw["dataset"]["name"]]
    spec = parse_network(raw["network"], input_shape, num_classes)
    assert parse_network(spec.to_dict(), input_shape, num_classes) == spec
    options = rule_options_from_config(raw["rule"])
    assert options.name == "brainprop"
    torch.manual_seed(0)
    for feedback in (needs_feedback(options), needs_feedback(rule_options_from_config("ebp"))):
        net = Network(spec, feedback).eval()
        with torch.no_grad():
            q = net(torch.rand(2, *input_shape))
        assert q.shape == (2, num_classes) and bool(torch.isfinite(q).all())
