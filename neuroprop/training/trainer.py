"""The training loop: epochs, validation-driven early stopping, checkpoints, resume.

A run directory holds::

    config.yaml        the resolved experiment configuration
    checkpoint.pt      the latest epoch's full state (weights, optimizer, RNGs, history)
    best.pt            the weights of the epoch with the best validation accuracy
    metrics.jsonl      one JSON line per epoch (with ``elapsed_seconds``, the training and
                       validation seconds so far), then one for the final test evaluation
                       (with ``time_to_accuracy``, as in summary.json)
    learning_curve.png validation accuracy per epoch
    summary.json       the run's result (test accuracy measured once, on the best weights;
                       ``time_to_accuracy``: per threshold of ``training.time_to_accuracy``,
                       the first epoch whose validation accuracy reached it and the seconds
                       until then, null if none did)

The test set is evaluated exactly once, at the end, on the weights selected by
validation accuracy (the reference code selected on the test set; we do not).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from neuroprop.config import ExperimentConfig, OptimizerConfig
from neuroprop.data import Dataset, Split, dataset_shape, load_dataset
from neuroprop.errors import DivergedError, NeuropropError
from neuroprop.network.network import Network
from neuroprop.network.spec import NetworkSpec, parse_network
from neuroprop.rules import (
    LearningRule,
    RuleOptions,
    check_substrate,
    make_rule,
    needs_feedback,
    rule_options_from_config,
)
from neuroprop.training.allocator import keep_freed_memory
from neuroprop.training.checkpoint import (
    DAMAGE,
    atomic_write_text,
    damaged,
    load_checkpoint,
    save_checkpoint,
    write_json,
)
from neuroprop.training.init_from import init_from
from neuroprop.training.lock import run_lock
from neuroprop.training.metrics import time_to_accuracy, write_history
from neuroprop.training.plot import plot_learning_curves

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CURVE = "learning_curve.png"


@dataclass
class Experiment:
    """Everything a config builds: data, network, rule and optimizer."""

    config: ExperimentConfig
    dataset: Dataset
    spec: NetworkSpec
    network: Network
    rule: LearningRule
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None


def make_optimizer(params: list[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The configured optimizer. Adam runs torch's fused kernel (one pass over each
    parameter instead of several)."""
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _check_shift(shift: int, input_shape: tuple[int, int, int]) -> None:
    """Refuse a ``dataset.shift`` that would move the dataset's images out of view."""
    smallest = min(input_shape[1:])
    if shift >= smallest:
        raise NeuropropError(f"dataset.shift: {shift} pixels would move a {smallest}-pixel "
                             f"image out of view; use 0 to {smallest - 1} (1-2 is usual)")


def _network_and_rule(config: ExperimentConfig, input_shape: tuple[int, int, int],
                      num_classes: int) -> tuple[NetworkSpec, RuleOptions]:
    """The validated network spec and rule options for the dataset's shape (the shape is
    known here, so the dataset settings that depend on it are checked here too)."""
    _check_shift(config.dataset.shift, input_shape)
    spec = parse_network(config.network, input_shape, num_classes)
    options = rule_options_from_config(config.rule)
    check_substrate(options, spec.substrate)
    return spec, options


def check_experiment(config: ExperimentConfig) -> None:
    """Refuse, with one line, what ``build_experiment`` would refuse in the config itself
    (dataset name, network for the dataset's shape, rule and substrate), without loading
    any data."""
    _network_and_rule(config, *dataset_shape(config.dataset.name))


def build_experiment(config: ExperimentConfig, data_dir: str | Path | None = None) -> Experiment:
    """Seed the RNGs and build the experiment that ``config`` describes."""
    seed_everything(config.training.seed)
    dataset = load_dataset(
        config.dataset.name,
        data_dir=data_dir if data_dir is not None else config.dataset.data_dir,
        val_fraction=config.dataset.val_fraction,
        seed=config.training.seed,
        limit=config.dataset.limit,
        classes=config.dataset.classes,
    )
    for split, fix in (("train", "check the dataset files"),
                       ("val", "set dataset.val_fraction above 0 (model selection needs a "
                               "validation split)"),
                       ("test", "check the dataset's test files")):
        if len(getattr(dataset, split)) == 0:
            raise NeuropropError(f"dataset {dataset.name}: the {split} split has no samples; "
                                 f"{fix}")
    spec, options = _network_and_rule(config, dataset.input_shape, dataset.num_classes)
    rule = make_rule(options)
    network = Network(spec, feedback=needs_feedback(options))
    optimizer = make_optimizer([p for p in network.parameters() if p.requires_grad],
                               config.optimizer)
    scheduler = None
    if config.schedule.halve_every:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.schedule.halve_every, 0.5)
    return Experiment(config, dataset, spec, network, rule, optimizer, scheduler)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def accuracy(network: Network, split: Split, batch_size: int = 1000) -> float:
    """Fraction of samples whose greedy action (argmax Q) is the label."""
    was_training = network.training
    network.eval()
    correct = 0
    for x, y in split.batches(batch_size, shuffle=False):
        correct += int((network(x).argmax(dim=1) == y).sum())
    network.train(was_training)
    return correct / max(len(split), 1)


def train_epoch(exp: Experiment, generator: torch.Generator, epoch: int,
                progress: bool | None = None) -> dict:
    """One epoch of ``exp.rule`` over the shuffled training split, then the validation
    pass; returns the epoch's metrics row (``train_loss`` is NaN if training diverged).
    ``progress``: a progress bar (None: only when stderr is a terminal). Sets the
    process's allocator to keep freed memory (``neuroprop.training.allocator``)."""
    keep_freed_memory()
    cfg = exp.config.training
    exp.network.train()
    start = time.perf_counter()
    reward = loss = 0.0
    count = 0
    batches = exp.dataset.train.batches(cfg.batch_size, shuffle=True, generator=generator,
                                        shift=exp.config.dataset.shift)
    total = math.ceil(len(exp.dataset.train) / cfg.batch_size)
    bar = tqdm(batches, total=total, desc=f"epoch {epoch}", leave=False,
               disable=None if progress is None else not progress, file=sys.stderr)
    for x, y in bar:
        exp.optimizer.zero_grad(set_to_none=True)
        try:
            result = exp.rule.step(exp.network, x, y)
        except DivergedError:
            loss = math.nan
            break
        exp.optimizer.step()
        reward += result.reward_sum
        loss += result.loss_sum
        count += result.count
        bar.set_postfix(reward=f"{reward / max(count, 1):.3f}", refresh=False)
    bar.close()
    train_seconds = time.perf_counter() - start
    row = {"event": "epoch", "epoch": epoch,
           "lr": exp.optimizer.param_groups[0]["lr"],
           "train_reward_rate": reward / max(count, 1),
           "train_loss": loss / max(count, 1),
           "val_accuracy": accuracy(exp.network, exp.dataset.val, cfg.eval_batch_size),
           "train_seconds": train_seconds,
           "seconds": time.perf_counter() - start}
    if cfg.monitor_test:  # for plots only: not part of the epoch's seconds
        row["test_accuracy_monitor"] = accuracy(exp.network, exp.dataset.test,
                                                cfg.eval_batch_size)
    return row


def _weights_finite(network: Network) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in network.parameters())


def _rng_state(generator: torch.Generator) -> dict:
    """Every RNG's state as tensors, numbers and tuples (loadable with weights_only)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "data": generator.get_state(),
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss,
                      gauss),
            "python": random.getstate()}


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    random.setstate(state["python"])


FIXED_ON_RESUME = ("dataset.name", "dataset.val_fraction", "dataset.limit", "rule",
                   "optimizer.name", "training.seed", "training.batch_size")
"""Settings a resumed run must keep: they define the data split, the rule, the optimizer's
state or the order of the batches."""


def check_resumable(stored: dict | None, config: ExperimentConfig, source: Path) -> None:
    """Refuse a resume that changes a setting of FIXED_ON_RESUME (before anything is
    written), naming the key and both values."""
    if not isinstance(stored, dict):
        return
    new = config.to_dict()
    for key in FIXED_ON_RESUME:
        old_value, new_value = stored, new
        for part in key.split("."):
            old_value = old_value.get(part) if isinstance(old_value, dict) else None
            new_value = new_value.get(part)
        if old_value != new_value:
            raise NeuropropError(
                f"{key}: {source} was trained with {old_value!r}, the config says "
                f"{new_value!r}; a resumed run keeps it (start a new --run-dir to change it)"
            )


PROGRESS = {"epoch": int, "best_val": float, "best_epoch": int, "since_best": int,
            "history": list, "train_seconds": float}
"""The training progress a checkpoint holds, by key and type."""
HISTORY_ROW = {"epoch": int, "val_accuracy": float, "train_reward_rate": float}
"""What the trainer reads back from every row of the history."""


def _progress(raw: object) -> dict:
    """A checkpoint's progress with its keys and types checked (KeyError, TypeError or
    ValueError where they are wrong): PROGRESS, and HISTORY_ROW in every row, which
    must also be plain JSON (it is rewritten to metrics.jsonl)."""
    _check_fields(raw, PROGRESS)
    for row in raw["history"]:
        _check_fields(row, HISTORY_ROW)
        json.dumps(row, allow_nan=True)
    return raw


def _without_shared_feedback(state: dict, network: Network) -> dict:
    """An optimizer state written before tied learning feedback weights were held as the
    forward weights themselves (one entry per parameter then, the feedback's a copy of the
    forward weight's), reduced to one entry per distinct parameter. Others unchanged."""
    params = [p for _, p in network.named_parameters(remove_duplicate=False)
              if p.requires_grad]
    first = {id(p): index for index, p in reversed(list(enumerate(params)))}
    keep = sorted(first.values())
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if len(keep) == len(params) or not isinstance(groups, list) or len(groups) != 1 or (
        len(groups[0].get("params", ())) != len(params)
    ):
        return state
    old_state = state.get("state", {})
    return {"state": {new: old_state[old] for new, old in enumerate(keep) if old in old_state},
            "param_groups": [{**groups[0], "params": list(range(len(keep)))}]}


def _check_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Every per-parameter buffer (momentum, Adam's moments) has its parameter's shape
    (torch checks this only at the first step): ValueError if not."""
    for param, buffers in optimizer.state.items():
        for name, value in buffers.items():
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                raise ValueError(f"optimizer {name} has shape {tuple(value.shape)}, its "
                                 f"parameter {tuple(param.shape)}")


def _check_fields(entry: object, expected: dict[str, type]) -> None:
    if not isinstance(entry, dict):
        raise TypeError(f"{type(entry).__name__} where a mapping belongs")
    for key, kind in expected.items():
        value = entry[key]
        allowed = (int, float) if kind is float else kind
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise TypeError(f"{key} is a {type(value).__name__}, not {kind.__name__}")


def _restart_schedule(exp: Experiment, epochs_done: int) -> None:
    """After a resume, take the learning rate, momentum and weight decay from the config
    (they may have changed, e.g. a lower rate after a divergence), with the schedule's
    halvings for the epochs already done."""
    cfg = exp.config.optimizer
    halve_every = exp.config.schedule.halve_every
    factor = 0.5 ** (epochs_done // halve_every) if halve_every else 1.0
    for group in exp.optimizer.param_groups:
        group["initial_lr"] = cfg.lr
        group["lr"] = cfg.lr * factor
        group["weight_decay"] = cfg.weight_decay
        if "momentum" in group:
            group["momentum"] = cfg.momentum
    if exp.scheduler is not None:
        exp.scheduler.base_lrs = [cfg.lr for _ in exp.optimizer.param_groups]


def check_architecture(stored: dict, spec: NetworkSpec, source: Path) -> None:
    """Refuse a checkpoint whose network differs from the one the config describes
    (compared as parsed specs, so checkpoints written by older versions still match)."""
    try:
        same = parse_network(stored, spec.input_shape, spec.num_classes) == spec
    except NeuropropError:
        same = False
    if not same:
        raise NeuropropError(
            f"{source}: checkpoint holds another architecture than the config describes; "
            "use the run's own config.yaml or a new --run-dir"
        )


class Trainer:
    """Trains one experiment in ``run_dir``; ``run(resume=...)`` returns the summary dict.

    ``init_from``: a run directory, import folder or checkpoint whose weights start the
    run (``neuroprop.training.init_from``); a resumed run that has a checkpoint already
    continues from that instead.
    """

    def __init__(self, config: ExperimentConfig, run_dir: Path,
                 data_dir: str | Path | None = None, progress: bool | None = None,
                 init_from: Path | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.data_dir = data_dir
        self.progress = progress
        self.init_from = None if init_from is None else Path(init_from)

    def run(self, resume: bool = False) -> dict:
        """Train (or, with ``resume``, continue) the run, holding the run directory's lock."""
        with run_lock(self.run_dir):
            return self._run(resume)

    def _run(self, resume: bool) -> dict:
        checkpoint_path = self.run_dir / CHECKPOINT
        if checkpoint_path.exists() and not resume:
            raise NeuropropError(
                f"{self.run_dir} already holds a run; pass --resume to continue it "
                "or choose another --run-dir"
            )
        exp = build_experiment(self.config, self.data_dir)
        generator = torch.Generator().manual_seed(self.config.training.seed + 1)
        state = {"epoch": 0, "best_val": -math.inf, "best_epoch": 0, "since_best": 0,
                 "history": [], "train_seconds": 0.0}
        if resume and checkpoint_path.exists():
            saved = load_checkpoint(checkpoint_path)
            check_architecture(saved["network"], exp.spec, checkpoint_path)
            check_resumable(saved.get("config"), self.config, checkpoint_path)
            try:
                exp.network.load_state_dict(saved["model"])
                exp.optimizer.load_state_dict(
                    _without_shared_feedback(saved["optimizer"], exp.network))
                _check_optimizer_state(exp.optimizer)
                if exp.scheduler is not None and saved.get("scheduler") is not None:
                    exp.scheduler.load_state_dict(saved["scheduler"])
                _set_rng_state(saved["rng"], generator)
                state = _progress(saved["progress"])
            except DAMAGE as error:
                raise damaged(checkpoint_path, error) from None
            _restart_schedule(exp, state["epoch"])
        elif self.init_from is not None:
            init_from(exp.network, self.init_from / BEST if self.init_from.is_dir()
                      else self.init_from)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / CONFIG, yaml.safe_dump(self.config.to_dict(),
                                                                sort_keys=False))
        write_history(self.run_dir / METRICS, state["history"])

        cfg = self.config.training

        def patience_left() -> bool:
            return cfg.patience is None or state["since_best"] < cfg.patience

        while state["epoch"] < cfg.max_epochs and patience_left():
            row = self._train_epoch(exp, generator, state["epoch"] + 1)
            if not _weights_finite(exp.network) or not math.isfinite(row["train_loss"]):
                self._diverged(exp, state, row)
            state["epoch"] += 1
            if row["val_accuracy"] > state["best_val"] + cfg.min_delta or state["best_epoch"] == 0:
                state.update(best_val=row["val_accuracy"], best_epoch=state["epoch"], since_best=0)
                save_checkpoint(self.run_dir / BEST, {
                    "model": exp.network.state_dict(), "network": exp.spec.to_dict(),
                    "epoch": state["epoch"], "val_accuracy": row["val_accuracy"]})
            else:
                state["since_best"] += 1
            if exp.scheduler is not None:
                exp.scheduler.step()
            state["train_seconds"] += row["seconds"]
            row["elapsed_seconds"] = state["train_seconds"]
            state["history"].append(row)
            save_checkpoint(checkpoint_path, {
                "model": exp.network.state_dict(), "network": exp.spec.to_dict(),
                "optimizer": exp.optimizer.state_dict(),
                "scheduler": exp.scheduler.state_dict() if exp.scheduler else None,
                "rng": _rng_state(generator), "progress": state,
                "config": self.config.to_dict()})
            write_history(self.run_dir / METRICS, state["history"])
            self._report(row)
        return self._finish(exp, state, "max_epochs" if patience_left() else "early_stopping")

    def _train_epoch(self, exp: Experiment, generator: torch.Generator, epoch: int) -> dict:
        return train_epoch(exp, generator, epoch, self.progress)

    def _report(self, row: dict) -> None:
        tqdm.write(
            f"epoch {row['epoch']:4d}  reward {row['train_reward_rate']:.4f}  "
            f"val {row['val_accuracy']:.4f}  lr {row['lr']:.3g}  {row['seconds']:.1f} s",
            file=sys.stderr,
        )

    def _diverged(self, exp: Experiment, state: dict, row: dict) -> None:
        epoch = state["epoch"] + 1
        write_history(self.run_dir / METRICS,
                      state["history"] + [{**row, "event": "diverged", "epoch": epoch}])
        write_json(self.run_dir / SUMMARY, self._summary_fields(exp, state) | {
            "status": "diverged", "diverged_epoch": epoch})
        if state["epoch"]:
            advice = (f"the last good checkpoint (epoch {state['epoch']}) is kept in "
                      f"{self.run_dir / CHECKPOINT}; lower optimizer.lr and continue with "
                      "--resume")
        else:
            advice = "no epoch completed; lower optimizer.lr and train again"
        raise NeuropropError(f"weights diverged (NaN/inf) in epoch {epoch}; {advice}")

    def _summary_fields(self, exp: Experiment, state: dict) -> dict:
        epochs = state["epoch"]
        return {
            "name": self.config.name,
            "rule": exp.rule.name,
            "dataset": exp.dataset.name,
            "substrate": exp.spec.substrate,
            "epochs": epochs,
            "best_epoch": state["best_epoch"],
            "val_accuracy": state["best_val"] if epochs else None,
            "seconds_per_epoch": state["train_seconds"] / epochs if epochs else None,
            "train_reward_rate": state["history"][-1]["train_reward_rate"] if epochs else None,
            "parameters": sum(p.numel() for p in exp.network.parameters()),
            "time_to_accuracy": time_to_accuracy(state["history"],
                                                 self.config.training.time_to_accuracy),
            "run_dir": str(self.run_dir),
        } | ({} if self.init_from is None else {"init_from": str(self.init_from)})

    def _finish(self, exp: Experiment, state: dict, stop_reason: str) -> dict:
        load_weights(exp, self.run_dir / BEST)
        test = accuracy(exp.network, exp.dataset.test, self.config.training.eval_batch_size)
        history = state["history"] + [{
            "event": "test", "best_epoch": state["best_epoch"], "test_accuracy": test,
            "time_to_accuracy": time_to_accuracy(state["history"],
                                                 self.config.training.time_to_accuracy)}]
        write_history(self.run_dir / METRICS, history)
        plot_learning_curves({f"{exp.rule.name} ({exp.dataset.name})": self.run_dir},
                             self.run_dir / CURVE)
        summary = self._summary_fields(exp, state) | {
            "status": "finished", "stop_reason": stop_reason, "test_accuracy": test}
        write_json(self.run_dir / SUMMARY, summary)
        return summary


def load_trained(run_dir: Path, data_dir: str | Path | None = None) -> Experiment:
    """Rebuild a finished run's experiment with its best weights loaded."""
    from neuroprop.config import config_from_dict, load_yaml

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise NeuropropError(f"{run_dir}: not a run directory (no {CONFIG}); "
                             "pass the --run-dir of a 'neuroprop train' run")
    raw = load_yaml(run_dir / CONFIG)
    exp = build_experiment(config_from_dict(raw, raw.get("name", "experiment")), data_dir)
    load_weights(exp, run_dir / BEST)
    exp.network.eval()
    return exp


def load_weights(exp: Experiment, path: Path) -> None:
    """Load the weights of checkpoint ``path`` into ``exp.network`` (same architecture)."""
    best = load_checkpoint(path)
    check_architecture(best["network"], exp.spec, path)
    try:
        exp.network.load_state_dict(best["model"])
    except DAMAGE as error:
        raise damaged(path, error) from None
