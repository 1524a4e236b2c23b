"""``neuroprop learn``: an exported net keeps learning on the (simulated) chip, from reward.

Trials stream through the export's net on Lava's Loihi 2 simulator (``--target lava``)
or through neuroprop's numpy model of the same chip (``--target model``): per trial the
forward pass, max-Boltzmann selection, the reward from the label, the RPE, attention
feedback from the selected unit through feedback weights that learn too, and
BrainProp's update in the LearningDense synapses (``hardware.onchip``). Fixed point by
default (Loihi's learning engine), floating point with ``--float``.

Written into the output folder (a run directory, so the usual commands apply to it):

- ``trials.jsonl``: per trial its epoch, label, action, reward, Q of the action, RPE;
- ``reward.png``: the reward rate over trials, with test accuracy before and after;
- ``learn_summary.json``: accuracies before and after (all classes and per class group
  with ``--classes``), trials per second, the learning plan (rule strings, scales);
- ``plan/``: the learning plan with the learned weights (exact chip integers);
- ``config.yaml`` + ``best.pt``: the learned float weights as a neuroprop run (from the
  export's source run's config), and ``export-lava/``: its new export.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from hardware.format import load_export
from hardware.graph import HardwareNetwork
from hardware.onchip.model import Trials, learn, predict
from hardware.onchip.plan import (
    LearningPlan,
    check_learnable,
    load_plan,
    plan_learning,
    save_plan,
)
from neuroprop.deploy.lava_env import run_lava_python, temporary_folder
from neuroprop.deploy.run import export_dataset
from neuroprop.errors import NeuropropError
from neuroprop.training.checkpoint import (
    atomic_write_bytes,
    atomic_write_text,
    save_checkpoint,
    write_json,
)

TARGETS = ("lava", "model")
CALIBRATION_SAMPLES = 1000


def _class_groups(net: HardwareNetwork) -> dict[str, list[int]]:
    """Classes the export was trained on ("pretrained") and the others ("new"), when its
    run kept only some classes (``dataset.classes``)."""
    pretrained = (net.metadata.get("dataset") or {}).get("classes")
    if not isinstance(pretrained, list):
        return {}
    return {"pretrained_classes": sorted(pretrained),
            "new_classes": sorted(set(range(net.num_classes)) - set(pretrained))}


def _accuracies(plan: LearningPlan, x: np.ndarray, y: np.ndarray,
                groups: dict[str, list[int]]) -> dict[str, float]:
    actions = predict(plan, x).argmax(axis=1)
    result = {"all": float((actions == y).mean())}
    for name, members in groups.items():
        mask = np.isin(y, members)
        if mask.any():
            result[name] = float((actions[mask] == y[mask]).mean())
    return result


def learn_on_chip(export_dir: Path, out: Path, *, target: str = "lava", use_float: bool = False,
                  split: str = "train", limit: int | None = None, epochs: int = 1,
                  learning_rate: float = 0.05, epsilon: float = 0.02, temperature: float = 1.0,
                  seed: int = 0, scratch: float | None = None, classes: list[int] | None = None,
                  actions: np.ndarray | None = None,
                  data_dir: str | Path | None = None) -> dict:
    """Learn on the chip (module docstring); returns the summary also written to
    ``out/learn_summary.json``. ``scratch``: start from N(0, scratch^2) weights instead
    of the export's; ``classes``: trials only from these labels (all are scored; an
    export trained on some classes is also scored per group, pretrained and new);
    ``actions``: forced actions, one per trial (for tests)."""
    if target not in TARGETS:
        raise NeuropropError(f"--target {target}: expected one of {', '.join(TARGETS)}")
    if split not in ("train", "val"):
        raise NeuropropError(f"--split {split}: learn from 'train' or 'val' (test is for "
                             "scoring)")
    for name, value in (("--epochs", epochs), ("--limit", limit)):
        if value is not None and value < 1:
            raise NeuropropError(f"{name} {value}: expected a positive integer")
    if scratch is not None and not scratch > 0:
        raise NeuropropError(f"--scratch {scratch}: expected a positive standard deviation")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NeuropropError(f"{out} already exists and is not empty; choose a new --out")
    net = load_export(export_dir)
    w1, w2 = check_learnable(net)
    dataset = export_dataset(net, data_dir, every_class=True)
    part = getattr(dataset, split)
    x_all, y_all = part.x.numpy(), part.y.numpy()
    if classes is not None:
        keep = np.isin(y_all, classes)
        x_all, y_all = x_all[keep], y_all[keep]
    count = len(y_all) if limit is None else min(limit, len(y_all))
    if count == 0:
        raise NeuropropError(f"the {split} split has no samples of the chosen classes")
    order = np.concatenate([np.random.default_rng((seed, epoch)).permutation(len(y_all))[:count]
                            for epoch in range(epochs)])
    x_trials, y_trials = x_all[order], y_all[order]
    if actions is not None and len(actions) != len(order):
        raise NeuropropError(f"{len(actions)} forced actions for {len(order)} trials")
    initial = None
    if scratch is not None:
        rng = np.random.default_rng(seed)
        initial = (rng.normal(0, scratch, w1.shape), rng.normal(0, scratch, w2.shape))
    plan = plan_learning(net, fixed=not use_float, learning_rate=learning_rate,
                         epsilon=epsilon, temperature=temperature, seed=seed,
                         calibration=x_all[:CALIBRATION_SAMPLES], initial_weights=initial)
    test_x, test_y = dataset.test.x.numpy(), dataset.test.y.numpy()
    groups = _class_groups(net)
    before = _accuracies(plan, test_x, test_y, groups)
    start = time.perf_counter()
    if target == "model":
        learned, trials = learn(plan, x_trials, y_trials, actions)
        seconds = time.perf_counter() - start
    else:
        learned, trials, seconds = learn_in_lava_env(plan, x_trials, y_trials, actions)
    after = _accuracies(learned, test_x, test_y, groups)
    out.mkdir(parents=True, exist_ok=True)
    save_plan(learned, out / "plan")
    _write_trials(out / "trials.jsonl", trials, y_trials, count)
    summary = {
        "target": target, "mode": "floating_pt" if use_float else "fixed_pt",
        "export": str(Path(export_dir)), "split": split, "trials": len(order),
        "epochs": epochs, "classes": classes, "scratch": scratch,
        "test_accuracy_before": before, "test_accuracy_after": after,
        "reward_rate_last_epoch": float(trials.rewards[-count:].mean()),
        "seconds": seconds, "trials_per_second": len(order) / seconds if seconds else None,
        "plan": learned.summary(),
    }
    summary["run_dir"] = _write_run(net, learned, out, data_dir)
    _plot(out / "reward.png", trials, count, before, after)
    write_json(out / "learn_summary.json", summary)
    return summary


def learn_in_lava_env(plan: LearningPlan, x: np.ndarray, y: np.ndarray,
                       actions: np.ndarray | None) -> tuple[LearningPlan, Trials, float]:
    """Run ``plan``'s trials on Lava in the Lava environment (``python -m hardware.learn``);
    the learned plan, the trials and the seconds Lava ran."""
    with temporary_folder() as folder:
        save_plan(plan, folder / "plan")
        np.save(folder / "inputs.npy", x)
        np.save(folder / "labels.npy", y.astype(np.int64))
        args = ["-m", "hardware.learn", str(folder / "plan"), "--inputs",
                str(folder / "inputs.npy"), "--labels", str(folder / "labels.npy"), "--out",
                str(folder / "result")]
        if actions is not None:
            np.save(folder / "actions.npy", np.asarray(actions, dtype=np.int64))
            args += ["--actions", str(folder / "actions.npy")]
        run_lava_python(args, what="Lava learning")
        learned = load_plan(folder / "result")
        trials = Trials.from_array(np.load(folder / "result" / "trials.npy"))
        timing = json.loads((folder / "result" / "timing.json").read_text())
    return learned, trials, float(timing["seconds_run"])


def _write_trials(path: Path, trials: Trials, labels: np.ndarray, per_epoch: int) -> None:
    lines = []
    for index, action in enumerate(trials.actions):
        lines.append(json.dumps({
            "trial": index, "epoch": index // per_epoch, "label": int(labels[index]),
            "action": int(action), "reward": float(trials.rewards[index]),
            "q_action": float(trials.q[index, action]), "rpe": float(trials.delta[index]),
        }))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _write_run(net: HardwareNetwork, plan: LearningPlan, out: Path,
               data_dir: str | Path | None) -> str | None:
    """``config.yaml`` and ``best.pt`` with the learned float weights, from the export's
    source run's config, and their export; None when the source run is gone."""
    from neuroprop.config import config_from_dict, load_yaml
    from neuroprop.deploy.export import export_run
    from neuroprop.network import Network
    from neuroprop.training.trainer import BEST, CONFIG, build_experiment

    source = Path(str(net.metadata.get("source_run", "")))
    if not (source / CONFIG).is_file():
        return None
    raw = load_yaml(source / CONFIG)
    if isinstance(raw.get("dataset"), dict):
        raw["dataset"].pop("classes", None)  # the chip's net answers for every class
    config = config_from_dict(raw, raw.get("name", "experiment"))
    exp = build_experiment(config, data_dir)
    network: Network = exp.network
    weights = plan.float_weights()
    layers = [layer for layer in network.layers if hasattr(layer, "weight")]
    with torch.no_grad():
        layers[0].weight.copy_(torch.from_numpy(weights["hidden"]))
        layers[1].weight.copy_(torch.from_numpy(weights["output"]))
        for layer, feedback in ((layers[0], None), (layers[1], weights["feedback"].T)):
            # tied learning feedback is the forward weight itself: the run keeps the
            # learned forward weights (the chip's B2, equal up to rare one-unit trace
            # decays in fixed point, stays in plan/)
            own = getattr(layer, "feedback_weight", None)
            if own is not None and own is not layer.weight:
                own.copy_(layer.weight if feedback is None else torch.from_numpy(feedback))
    atomic_write_text(out / CONFIG, yaml.safe_dump(raw, sort_keys=False))
    save_checkpoint(out / BEST, {"model": network.state_dict(), "network": exp.spec.to_dict(),
                                 "epoch": 0, "learned_on_chip_from": str(source)})
    export_run(out, out=out / "export-lava", data_dir=data_dir)
    return str(out)


def _plot(path: Path, trials: Trials, per_epoch: int, before: dict, after: dict) -> None:
    """Reward rate over trials (moving mean; epochs marked) and test accuracy before and
    after, per class group, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rewards = trials.rewards
    window = max(1, min(100, len(rewards) // 10))
    rate = np.convolve(rewards, np.ones(window) / window, mode="valid")
    figure, (curve, bars) = plt.subplots(1, 2, figsize=(10, 3.6),
                                         gridspec_kw={"width_ratios": [2.2, 1]})
    curve.plot(np.arange(window, len(rewards) + 1), rate, label=f"reward rate ({window} trials)")
    for boundary in range(per_epoch, len(rewards), per_epoch):
        curve.axvline(boundary, color="0.85", linewidth=0.8)
    curve.set_xlabel("trial")
    curve.set_ylabel("reward rate")
    curve.set_ylim(0, 1.02)
    curve.legend(loc="lower right", fontsize=8)
    groups = list(after)
    positions = np.arange(len(groups))
    bars.bar(positions - 0.2, [before[g] for g in groups], 0.4, label="before", color="C1")
    bars.bar(positions + 0.2, [after[g] for g in groups], 0.4, label="after", color="C2")
    bars.set_xticks(positions, [g.replace("_classes", "").replace("_", " ") for g in groups])
    bars.set_ylabel("test accuracy")
    bars.set_ylim(0, 1.02)
    bars.legend(fontsize=8)
    figure.tight_layout()
    try:
        atomic_write_bytes(path, lambda handle: figure.savefig(handle, format="png", dpi=120))
    finally:
        plt.close(figure)
