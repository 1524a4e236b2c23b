"""``neuroprop compare``: one trained net scored at every stage of the chain, same samples.

The stages, in the order a network goes to hardware:

    float rate            the trained rate net in PyTorch (rate runs)
    spiking float, T      the spiking net in PyTorch at each T: a rate run converted by
                          threshold balancing (``neuroprop.deploy.convert``), or a spiking
                          run with its weights at another trial length
    integer model         neuroprop's numpy model of Loihi's fixed-point arithmetic
                          (``hardware.emulator.forward_fixed``) of the quantised export: of
                          the rate net (no T), and of the spiking net at each T
    Lava fixed point      the same exports on Lava's Loihi simulator (``fixed_pt``)

Each stage's drop is its accuracy minus the previous stage's (at the same T for spiking
stages). Writes ``compare.json`` and ``compare.png`` (accuracy against T, one line per
stage; stages without T are horizontal lines) into the output folder, and checks budgets
(``--budgets``: the largest drop allowed per stage, in accuracy points; see
tests/neuroprop/regression/budgets.yaml).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from hardware.emulator import forward_fixed  # noqa: E402
from hardware.format import save_export  # noqa: E402
from hardware.graph import HardwareNetwork  # noqa: E402
from hardware.quantize import quantise  # noqa: E402
from neuroprop.deploy.convert import spiking_layers, threshold_scales  # noqa: E402
from neuroprop.deploy.export import calibration_inputs, hardware_network  # noqa: E402
from neuroprop.deploy.lava_env import run_in_lava_env, temporary_folder  # noqa: E402
from neuroprop.errors import NeuropropError  # noqa: E402
from neuroprop.network import Network, parse_network  # noqa: E402
from neuroprop.training.checkpoint import atomic_write_bytes, write_json  # noqa: E402
from neuroprop.training.trainer import Experiment, load_trained  # noqa: E402

STAGES = ("float rate", "spiking float", "integer model", "Lava fixed point")


@dataclass
class Stage:
    """One stage's score: ``timesteps`` None for rate stages; ``drop`` in points (accuracy
    minus the previous stage's, None for the first)."""

    stage: str
    timesteps: int | None
    accuracy: float
    drop: float | None = None


def _accuracy(q: np.ndarray | torch.Tensor, labels: np.ndarray) -> float:
    actions = q.argmax(1) if isinstance(q, np.ndarray) else q.argmax(1).numpy()
    return float((actions == labels).mean())


def _spiking_network(exp: Experiment, timesteps: int, scales: list[float] | None) -> Network:
    """The run's net as a spiking net of ``timesteps`` steps (converted if a rate net)."""
    if exp.spec.spiking:
        section = {**exp.spec.to_dict(), "timesteps": timesteps}
        spec = parse_network(section, exp.spec.input_shape, exp.spec.num_classes)
        network = Network(spec).eval()
        network.load_state_dict({k: v for k, v in exp.network.state_dict().items()
                                 if "feedback" not in k})
        return network
    raw_layers, weights = spiking_layers(exp, scales)
    spec = parse_network({"substrate": "spiking", "timesteps": timesteps,
                          "init": exp.spec.init.to_dict(), "layers": raw_layers},
                         exp.spec.input_shape, exp.spec.num_classes)
    network = Network(spec).eval()
    with torch.no_grad():
        for layer, weight in zip([layer for layer in network.layers if hasattr(layer, "weight")],
                                 weights, strict=True):
            layer.weight.copy_(torch.from_numpy(weight))
    return network


def _q(network: Network, x_int: np.ndarray, scale: float, batch: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([network(torch.from_numpy(x_int[i:i + batch]).float() * scale)
                          for i in range(0, len(x_int), batch)])


def compare_run(run_dir: Path, timesteps: list[int], split: str = "test",
                limit: int | None = None, data_dir: str | Path | None = None,
                out: Path | None = None, calibration: int = 1000) -> dict[str, Any]:
    """Score ``run_dir`` at every stage on the same samples; write compare.json/.png."""
    if not timesteps or any(t < 1 for t in timesteps):
        raise NeuropropError(f"--timesteps {timesteps}: expected integers T >= 1, e.g. 4,8,16")
    if limit is not None and limit <= 0:
        raise NeuropropError(f"--limit {limit}: expected a positive number of samples")
    exp = load_trained(run_dir, data_dir=data_dir)
    part = getattr(exp.dataset, split)
    count = len(part) if limit is None else min(limit, len(part))
    if count == 0:
        raise NeuropropError(f"the {split} split is empty; choose another --split")
    x_int, labels = part.x[:count].numpy(), part.y[:count].numpy()
    batch = exp.config.training.eval_batch_size
    scale = exp.dataset.scale
    calibration_x = calibration_inputs(exp, calibration)
    stages: list[Stage] = []
    agreement: dict[str, float] = {}
    scales = None
    if not exp.spec.spiking:
        stages.append(Stage("float rate", None, _accuracy(_q(exp.network, x_int, scale, batch),
                                                          labels)))
        scales = threshold_scales(exp, calibration, 100.0)
        _hardware_stages(hardware_network(exp, Path(run_dir)), calibration_x, x_int, labels,
                         stages, agreement)
    for steps in sorted(set(timesteps)):
        network = _spiking_network(exp, steps, scales)
        stages.append(Stage("spiking float", steps,
                            _accuracy(_q(network, x_int, scale, batch), labels)))
        _hardware_stages(hardware_network(exp, Path(run_dir), network), calibration_x, x_int,
                         labels, stages, agreement)
    stages.sort(key=lambda stage: (stage.timesteps or 0, STAGES.index(stage.stage)))
    _set_drops(stages)
    out = Path(out) if out is not None else Path(run_dir) / "compare"
    result = {"run_dir": str(run_dir), "split": split, "samples": count,
              "substrate": exp.spec.substrate,
              "stages": [asdict(stage) for stage in stages],
              "lava_agreement_with_integer_model": agreement}
    write_json(out / "compare.json", result)
    _plot(stages, out / "compare.png", f"{Path(run_dir).name}: {count} {split} samples")
    result["out"] = str(out)
    return result


def _hardware_stages(float_net: HardwareNetwork, calibration_x: np.ndarray, x_int: np.ndarray,
                     labels: np.ndarray, stages: list[Stage],
                     agreement: dict[str, float]) -> None:
    """The integer-model and Lava stages of one export (a rate net: no T; a spiking net: its
    T), and Lava == integer model agreement (the fraction of samples whose every Q-value
    is equal) under the key "rate" or "T=<T>"."""
    net = quantise(float_net, calibration_x)
    timesteps = net.timesteps if net.substrate == "spiking" else None
    q_int = forward_fixed(net, x_int)
    stages.append(Stage("integer model", timesteps, _accuracy(q_int, labels)))
    with temporary_folder() as folder:
        export_dir = save_export(net, folder / "export")
        q_lava = run_in_lava_env(export_dir, x_int).q
    stages.append(Stage("Lava fixed point", timesteps, _accuracy(q_lava, labels)))
    key = "rate" if timesteps is None else f"T={timesteps}"
    agreement[key] = float((q_lava == q_int).all(axis=1).mean())


def _set_drops(stages: list[Stage]) -> None:
    """drop = accuracy - the previous stage's in the chain float rate -> spiking float (T)
    -> integer model -> Lava fixed point; a hardware stage follows the spiking float stage
    of its own T, or the float rate stage when it has no T (a rate export)."""
    by_key = {(stage.stage, stage.timesteps): stage for stage in stages}
    for stage in stages:
        t = stage.timesteps
        previous = {
            "float rate": None,
            "spiking float": by_key.get(("float rate", None)),
            "integer model": by_key.get(("spiking float", t) if t else ("float rate", None)),
            "Lava fixed point": by_key.get(("integer model", t)),
        }[stage.stage]
        if previous is not None:
            stage.drop = 100 * (stage.accuracy - previous.accuracy)


def check_budgets(result: dict[str, Any], budgets_path: Path) -> list[str]:
    """The stages whose drop exceeds its budget (points), as lines naming both."""
    try:
        budgets = yaml.safe_load(Path(budgets_path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise NeuropropError(f"budgets {budgets_path}: unreadable ({error}); pass a YAML "
                             "mapping of stage: largest drop in points") from None
    if not isinstance(budgets, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in budgets.values()):
        raise NeuropropError(f"budgets {budgets_path}: expected a mapping of stage names to "
                             "numbers of points")
    unknown = sorted(set(budgets) - set(STAGES))
    if unknown:
        raise NeuropropError(f"budgets {budgets_path}: unknown stage {unknown[0]!r}; use one "
                             f"of {', '.join(STAGES)}")
    over = []
    for stage in result["stages"]:
        budget = budgets.get(stage["stage"])
        if budget is not None and stage["drop"] is not None and -stage["drop"] > budget:
            where = f" at T = {stage['timesteps']}" if stage["timesteps"] else ""
            over.append(f"{stage['stage']}{where} lost {-stage['drop']:.2f} points, budget "
                        f"{budget}")
    return over


def render(result: dict[str, Any]) -> str:
    """A text table: stage, T, accuracy, drop from the previous stage."""
    lines = [f"{result['samples']} {result['split']} samples ({result['substrate']} run):",
             f"  {'stage':<20}{'T':>4}  {'accuracy':>8}  {'drop (points)':>13}"]
    for stage in result["stages"]:
        t = "" if stage["timesteps"] is None else str(stage["timesteps"])
        drop = "" if stage["drop"] is None else f"{stage['drop']:+.2f}"
        lines.append(f"  {stage['stage']:<20}{t:>4}  {stage['accuracy']:>8.4f}  {drop:>13}")
    for key, value in result["lava_agreement_with_integer_model"].items():
        lines.append(f"  Lava == integer model on {100 * value:.2f} % of samples ({key})")
    return "\n".join(lines)


def _plot(stages: list[Stage], out: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    timed = sorted({s.timesteps for s in stages if s.timesteps is not None})
    for index, name in enumerate(STAGES):
        color = f"C{index}"
        for stage in (s for s in stages if s.stage == name and s.timesteps is None):
            # dashes of growing length keep equal horizontal lines visible
            ax.axhline(100 * stage.accuracy, linestyle=(0, (1 + 3 * index, 3)), color=color,
                       label=name if name == "float rate" else f"{name} (rate export)")
        timed_rows = [s for s in stages if s.stage == name and s.timesteps is not None]
        if timed_rows:  # markers of shrinking size keep equal points visible
            ax.plot([s.timesteps for s in timed_rows], [100 * s.accuracy for s in timed_rows],
                    marker="o", markersize=9 - 2 * index, color=color,
                    label=name if name == "spiking float" else f"{name} (spiking)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(timed, [str(t) for t in timed])
    ax.set_xlabel("time steps per trial T")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        atomic_write_bytes(out, lambda handle: fig.savefig(handle, format="png", dpi=120))
    finally:
        plt.close(fig)
