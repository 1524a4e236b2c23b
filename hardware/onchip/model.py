"""The numpy model of on-chip learning: what Lava's chip computes over a run of trials.

Float: BrainProp per trial with the chip's float arithmetic (equal to neuroprop's torch
BrainProp with batch size 1 and SGD, to rounding). Fixed: the integers of Lava's
``fixed_pt`` models, bit for bit, including the learning engine's stochastic decay and
rounding with Lava's random number streams (``hardware.onchip.arithmetic``). The trial's
schedule and scales are the plan's (``hardware.onchip.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.errors import HardwareError
from hardware.onchip import arithmetic as engine
from hardware.onchip.plan import (
    CONNECTIONS,
    SPIKE_STEP,
    TRIAL_STEPS,
    X_TAU,
    LearningPlan,
)
from hardware.onchip.selection import Selector


@dataclass
class Trials:
    """Per trial: the action, the reward (0/1), the Q-values (floats) and the RPE."""

    actions: np.ndarray
    rewards: np.ndarray
    q: np.ndarray
    delta: np.ndarray

    def to_array(self) -> np.ndarray:
        """(N, A + 3) float64: q..., action, reward, delta (the chip's record layout)."""
        return np.column_stack([self.q, self.actions, self.rewards, self.delta])

    @classmethod
    def from_array(cls, records: np.ndarray) -> Trials:
        return cls(q=records[:, :-3], actions=records[:, -3].astype(np.int64),
                   rewards=records[:, -2], delta=records[:, -1])


def _shift(values: np.ndarray, exponent: int) -> np.ndarray:
    return values << exponent if exponent > 0 else values >> -exponent


def hidden_activity(plan: LearningPlan, w1: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The hidden neurons' pre-activation a (N, H) for inputs x (N, D): integer a in fixed
    point (a = W1 x shifted), float otherwise."""
    if plan.fixed:
        return _shift(x.astype(np.int64) @ w1.T.astype(np.int64), plan.hidden.weight_exp)
    return (x * plan.input_scale) @ w1.T


def predict(plan: LearningPlan, x: np.ndarray) -> np.ndarray:
    """Greedy forward pass of the chip's net on integer inputs (N, ...): Q-values (floats)."""
    x = _flat(plan, x)
    a = hidden_activity(plan, plan.hidden.weights, x)
    if plan.fixed:
        y1 = np.clip(a, 0, int(plan.hidden_max))
        return _shift(y1 @ plan.output.weights.T.astype(np.int64), 0) * plan.q_scale
    return np.maximum(a, 0) @ plan.output.weights.T


def _flat(plan: LearningPlan, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    inputs = plan.hidden.weights.shape[1]
    if x.ndim < 1 or int(np.prod(x.shape[1:])) != inputs:
        raise HardwareError(f"inputs have shape {x.shape}; expected N samples of {inputs} "
                            "values in the export's input layout")
    if not np.issubdtype(x.dtype, np.integer):
        raise HardwareError(f"inputs must be raw integer pixels, got {x.dtype}")
    return x.reshape(len(x), inputs)


def learn(plan: LearningPlan, x: np.ndarray, labels: np.ndarray,
          actions: np.ndarray | None = None) -> tuple[LearningPlan, Trials]:
    """Run one trial per sample in order; the plan with the learned weights and the trials.

    ``x``: integer inputs (N, ...); ``labels`` (N,); ``actions``: forced actions (N,).
    """
    x = _flat(plan, x)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(x) or (actions is not None and len(actions) != len(x)):
        raise HardwareError(f"{len(x)} inputs, {len(labels)} labels"
                            + ("" if actions is None else f", {len(actions)} actions")
                            + ": pass one of each per trial")
    selector = Selector(plan.seed, plan.epsilon, plan.temperature, actions)
    step = _FixedTrial(plan) if plan.fixed else _FloatTrial(plan)
    count = len(x)
    records = Trials(actions=np.zeros(count, np.int64), rewards=np.zeros(count),
                     q=np.zeros((count, plan.num_classes)), delta=np.zeros(count))
    for trial in range(count):
        step.run(trial, x[trial], int(labels[trial]), selector, records)
    return plan.with_weights(step.weights), records


class _FloatTrial:
    def __init__(self, plan: LearningPlan) -> None:
        self.plan = plan
        self.weights = {name: plan.connection(name).weights.astype(np.float64).copy()
                        for name in CONNECTIONS}

    def run(self, trial: int, x: np.ndarray, label: int, selector: Selector,
            records: Trials) -> None:
        plan, w = self.plan, self.weights
        x = x * plan.input_scale
        a = w["hidden"] @ x
        y1 = np.maximum(a, 0)
        q = w["output"] @ y1
        action = selector.choose(q)
        reward = float(action == label)
        delta = reward - q[action]
        choice = np.zeros(plan.num_classes)
        choice[action] = 2 * abs(delta)
        feedback = w["feedback"] @ choice
        at_action = np.zeros(plan.num_classes)
        at_action[action] = delta
        factors = {
            "hidden": np.sign(delta) * feedback * (a > 0),
            "output": at_action,
            "feedback": np.sign(delta) * y1,
        }
        pre = {"hidden": x, "output": y1, "feedback": choice}
        for name in CONNECTIONS:
            connection = plan.connection(name)
            steps = SPIKE_STEP[name]
            x1 = engine.decay_float(pre[name] / 2, steps, X_TAU)
            y = engine.decay_float(factors[name] * connection.gain, steps, engine.Y_TAU)
            x0 = pre[name] != 0
            w[name] = w[name] + np.outer(y, x1 * x0) * (connection.mantissa
                                                        * 2.0**connection.exponent)
        _record(records, trial, q, action, reward, delta)


class _FixedTrial:
    def __init__(self, plan: LearningPlan) -> None:
        self.plan = plan
        # Lava truncates a mixed-sign matrix's initial weights to even values once.
        self.weights = {name: (plan.connection(name).weights.astype(np.int32) >> 1) << 1
                        for name in CONNECTIONS}
        self.x_random = engine.RandomStream(plan.trace_seed)
        self.y_random = engine.RandomStream(plan.trace_seed + 2)
        self.w_random = engine.RandomStream(engine.WEIGHT_RNG_SEED)

    def run(self, trial: int, x: np.ndarray, label: int, selector: Selector,
            records: Trials) -> None:
        plan, w = self.plan, self.weights
        x = x.astype(np.int64)
        a = _shift(w["hidden"].astype(np.int64) @ x, plan.hidden.weight_exp)
        y1 = np.clip(a, 0, int(plan.hidden_max))
        q_int = _shift(w["output"].astype(np.int64) @ y1, plan.output.weight_exp)
        action = selector.choose(q_int * plan.q_scale)
        reward = int(action == label)
        delta = reward * int(plan.reward) - int(q_int[action])
        at_action = np.zeros(plan.num_classes, np.int64)
        at_action[action] = delta
        output_factor = engine.factor_fixed(at_action, plan.output.shift)
        choice = 2 * (output_factor[0] + output_factor[1])
        feedback = _shift(w["feedback"].astype(np.int64) @ choice, plan.feedback.weight_exp)
        sign = int(np.sign(delta))
        factors = {
            "hidden": engine.factor_fixed(sign * feedback * (a > 0), plan.hidden.shift),
            "output": output_factor,
            "feedback": engine.factor_fixed(sign * engine.pre_trace_fixed(y1), 0),
        }
        pre = {"hidden": x, "output": y1, "feedback": choice}
        learn_step = (trial + 1) * TRIAL_STEPS
        x_random = self.x_random[2 * learn_step]
        y_random = self.y_random[2 * learn_step]
        w_random = self.w_random[trial + 1]
        for name in CONNECTIONS:
            connection = plan.connection(name)
            steps = SPIKE_STEP[name]
            x0 = pre[name] != 0
            x1 = engine.decay_fixed(engine.pre_trace_fixed(pre[name]), steps, X_TAU, x_random)
            x1 = np.clip(x1, 0, engine.TRACE_MAX)
            y2, y3 = factors[name]
            y2 = engine.decay_fixed(y2, steps, engine.Y_TAU, y_random)
            y3 = engine.decay_fixed(y3, steps, engine.Y_TAU, y_random)
            w[name] = engine.apply_fixed(w[name], x0, x1, y2, y3, connection.mantissa,
                                         connection.exponent, w_random)
        _record(records, trial, q_int * plan.q_scale, action, reward,
                delta * plan.q_scale)


def _record(records: Trials, trial: int, q: np.ndarray, action: int, reward: float,
            delta: float) -> None:
    records.q[trial] = q
    records.actions[trial] = action
    records.rewards[trial] = reward
    records.delta[trial] = delta
