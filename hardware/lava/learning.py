"""Run BrainProp trials on Lava's Loihi 2 simulator, learning in LearningDense synapses.

The graph (schedule and factors: ``hardware.onchip.plan``)::

    RewardSelector --x--> W1 (LearningDense) --a--> HiddenLearner --y1--> W2 (LearningDense)
        --q--> RewardSelector --2|d| at s--> B2 (LearningDense) --2|d| phi--> HiddenLearner
    RewardSelector --d--> HiddenLearner
    HiddenLearner --y2, y3 (sign(d) 2|d| phi g)--> W1;  HiddenLearner --y2, y3 (sign(d) y1/2)--> B2
    RewardSelector --y2, y3 (d at s)--> W2

The selector is also the environment: it presents each trial's input (five processes
in all; each one costs every step).

One compiled graph runs all N trials ((T + 3) N steps; T = 1 for rate nets) in one
``run()``; inputs, labels and
forced actions go in as ``.npy`` files, the selector writes its record of every trial
into another, and the learned weights are read once at the end.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lava.magma.core.learning.constants import GradedSpikeCfg
from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import LearningDense
from lava.utils.weightutils import SignMode

from hardware.errors import HardwareError
from hardware.lava import runtime
from hardware.lava.processes.learning import HiddenLearner, RewardSelector
from hardware.onchip.model import Trials
from hardware.onchip.plan import CONNECTIONS, X_TAU, LearningPlan

MESSAGE_BITS = 24


@dataclass
class LavaLearning:
    """The plan with the learned weights, the record of every trial, and timings."""

    plan: LearningPlan
    trials: Trials
    seconds_build: float
    seconds_run: float

    @property
    def trials_per_second(self) -> float:
        count = len(self.trials.actions)
        return count / self.seconds_run if self.seconds_run > 0 else float("inf")


def learn_on_lava(plan: LearningPlan, x_int: np.ndarray, labels: np.ndarray,
                  actions: np.ndarray | None = None) -> LavaLearning:
    """One trial per sample of ``x_int`` (N, ...) uint8 with ``labels`` (N,) on Lava
    (``plan.fixed``: fixed_pt, else floating_pt); ``actions``: forced actions (N,)."""
    count = len(x_int)
    rows = np.asarray(x_int).reshape(count, -1)
    if count == 0 or rows.shape[1] != plan.hidden.weights.shape[1]:
        raise HardwareError(f"inputs have shape {np.shape(x_int)}; expected N >= 1 samples "
                            f"of {plan.hidden.weights.shape[1]} values")
    if len(labels) != count or (actions is not None and len(actions) != count):
        raise HardwareError("pass one label (and one forced action, if any) per input")
    rows = rows.astype(np.int32) if plan.fixed else rows.astype(np.float64) * plan.input_scale
    with tempfile.TemporaryDirectory(prefix="neuroprop-learn-") as folder:
        paths = {name: str(Path(folder) / f"{name}.npy")
                 for name in ("inputs", "labels", "actions", "records")}
        np.save(paths["inputs"], rows)
        np.save(paths["labels"], np.asarray(labels, dtype=np.int64))
        if actions is not None:
            np.save(paths["actions"], np.asarray(actions, dtype=np.int64))
        np.lib.format.open_memmap(paths["records"], mode="w+", dtype=np.float64,
                                  shape=(count, plan.num_classes + 3)).flush()
        start = time.perf_counter()
        root, synapses = _build(plan, paths, count, actions is not None)
        config = Loihi2SimCfg(select_tag="fixed_pt" if plan.fixed else "floating_pt")
        with runtime.managed_runtime(root):
            runtime.create_runtime(root, config)
            built = time.perf_counter()
            runtime.run_steps(root, count * plan.trial_steps)
            finished = time.perf_counter()
            learned = {name: np.asarray(synapses[name].weights.get()) for name in CONNECTIONS}
        records = np.load(paths["records"])
    dtype = np.int32 if plan.fixed else np.float64
    weights = {name: np.rint(w).astype(dtype) if plan.fixed else w.astype(dtype)
               for name, w in learned.items()}
    return LavaLearning(plan=plan.with_weights(weights), trials=Trials.from_array(records),
                        seconds_build=built - start, seconds_run=finished - built)


def _build(plan: LearningPlan, paths: dict[str, str], count: int,
           forced: bool) -> tuple[RewardSelector, dict[str, LearningDense]]:
    hidden_size, inputs = plan.hidden.weights.shape
    synapses = {name: _learning_dense(plan, name) for name in CONNECTIONS}
    factor = "shift" if plan.fixed else "gain"
    substrate = {"timesteps": plan.timesteps, "spiking": plan.spiking}
    hidden = HiddenLearner(size=hidden_size, params={
        **substrate, "neuron": plan.neurons.get("hidden"), "hidden_max": plan.hidden_max,
        **{name: getattr(plan.connection(name), factor) for name in ("hidden", "feedback")},
    })
    selector = RewardSelector(size=plan.num_classes, inputs=inputs, params={
        **substrate, "readout": plan.neurons.get("readout"), "inputs_path": paths["inputs"],
        "labels_path": paths["labels"],
        "actions_path": paths["actions"] if forced else None,
        "records_path": paths["records"], "num_trials": count, "reward": plan.reward,
        "q_scale": plan.q_scale, "epsilon": plan.epsilon, "temperature": plan.temperature,
        "seed": plan.seed, "output": getattr(plan.output, factor),
    })
    w1, w2, b2 = (synapses[name] for name in CONNECTIONS)
    selector.x_out.connect(w1.s_in)
    w1.a_out.connect(hidden.a_in)
    hidden.s_out.connect(w2.s_in)
    w2.a_out.connect(selector.q_in)
    selector.choice_out.connect(b2.s_in)
    b2.a_out.connect(hidden.fb_in)
    selector.rpe_out.connect(hidden.rpe_in)
    for synapse, y2, y3, neurons in ((w1, hidden.y2_out, hidden.y3_out, hidden),
                                     (b2, hidden.fy2_out, hidden.fy3_out, hidden),
                                     (w2, selector.y2_out, selector.y3_out, selector)):
        y2.connect(synapse.s_in_y2)
        y3.connect(synapse.s_in_y3)
        neurons.y1_out.connect(synapse.s_in_y1)
        neurons.bap_out.connect(synapse.s_in_bap)
    return selector, synapses


def _learning_dense(plan: LearningPlan, name: str) -> LearningDense:
    connection = plan.connection(name)
    rule = Loihi3FLearningRule(dw=connection.rule, x1_tau=X_TAU, t_epoch=plan.trial_steps,
                               rng_seed=plan.trace_seed)
    weights = connection.weights
    return LearningDense(
        weights=weights.astype(np.int32) if plan.fixed else weights.astype(np.float64),
        weight_exp=connection.weight_exp,
        sign_mode=SignMode.MIXED,
        num_message_bits=MESSAGE_BITS,
        learning_rule=rule,
        graded_spike_cfg=GradedSpikeCfg.OVERWRITE,
        name=f"learning_{name}",
    )
