"""Why BrainProp with the released code's init finds the classes one at a time.

A deep ReLU net initialised with a tiny scale starts with Q-values near zero (the product
of four small weight matrices), and every layer's update scales with the other layers'
weights: learning sits at a saddle. The greedy policy then keeps choosing one action, so
only that action's Q-value learns. An init that keeps the signal's scale finds the
classes within a few epochs (docs/sweeps.md, "Class discovery"; MNIST numbers there).
"""

from __future__ import annotations

import torch

from neuroprop.config import load_config
from neuroprop.training.trainer import build_experiment, train_epoch

DEEP = ("network.layers=[{type: dense, units: 300}, {type: dense, units: 200}, "
        "{type: dense, units: 100}, {type: output}]")


def classes_found(std: float, epochs: int = 15) -> tuple[int, float]:
    """Digits, a 64-300-200-100-10 net, BrainProp: the classes that the greedy policy gets
    right on most of their training samples after ``epochs``, and the validation accuracy."""
    torch.manual_seed(0)
    config = load_config(overrides=[DEEP, f"network.init.std={std}", "optimizer.lr=0.1"])
    experiment = build_experiment(config)
    generator = torch.Generator().manual_seed(1)
    for epoch in range(1, epochs + 1):
        row = train_epoch(experiment, generator, epoch, progress=False)
    train = experiment.dataset.train
    experiment.network.eval()
    with torch.no_grad():
        chosen = experiment.network(train.x.float() * train.scale, cache=False).argmax(1)
    found = sum(bool((chosen[train.y == c] == c).float().mean() > 0.5) for c in range(10))
    return found, row["val_accuracy"]


def test_a_tiny_init_finds_one_class_and_a_scale_keeping_init_finds_them_all() -> None:
    tiny_found, tiny_accuracy = classes_found(0.01)
    kept_found, kept_accuracy = classes_found(0.1)
    assert tiny_found <= 2 and tiny_accuracy < 0.2
    assert kept_found >= 6 and kept_accuracy > 0.5
