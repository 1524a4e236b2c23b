"""The numpy model of on-chip learning: what Lava's chip computes over a run of trials.

Float: BrainProp per trial with the chip's float arithmetic (equal to neuroprop's torch
BrainProp with batch size 1 and SGD, to rounding). Fixed: the integers of Lava's
``fixed_pt`` models, bit for bit, including the learning engine's stochastic decay and
rounding with Lava's random number streams (``hardware.onchip.arithmetic``). The trial's
schedule and scales are the plan's (``hardware.onchip.plan``).

A trial's forward pass gives, per substrate, the Q-values, the hidden neurons' gate and
their pre activity for W2 (and B2's post trace)::

    rate:     a = W1 x;  y1 = relu(a) (clipped to 8 bits in fixed point);  q = W2 y1
              gate g = [a > 0];  pre for W2: y1 (its trace: y1 / 2)
    spiking:  T steps of IF neurons on the constant current W1 x and a leaky read-out
              (du = 1, dv = 0) of W2 s; q = v[T] / T;  pre for W2: the spike count n
              (its trace: n, sent as a graded spike 2 n; float n / T);
              gate g = (1/T) sum_t psi(v_t) c_t (fixed: sum_t psi_int c_t), as the torch
              rule's trial-mean surrogate times the reset-aware window (docs/spiking.md)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.errors import HardwareError
from hardware.onchip import arithmetic as engine
from hardware.onchip.neurons import HiddenIF, Readout
from hardware.onchip.plan import CONNECTIONS, X_TAU, LearningPlan
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


@dataclass
class Forward:
    """A forward pass of N samples: ``q_raw`` what the read-out holds (fixed: integers),
    ``q`` the Q-values as floats, ``gate`` the hidden gates and ``payload`` the graded
    spike each hidden neuron sends W2 for learning (rate: y1; spiking: its count)."""

    q_raw: np.ndarray
    q: np.ndarray
    gate: np.ndarray
    payload: np.ndarray


def shift(values: np.ndarray, exponent: int) -> np.ndarray:
    """A Dense's weight exponent: << e, or arithmetic >> -e (floor)."""
    return values << exponent if exponent > 0 else values >> -exponent


def forward(plan: LearningPlan, weights: dict[str, np.ndarray], x: np.ndarray) -> Forward:
    """The chip's forward pass of integer inputs ``x`` (N, D) with ``weights``."""
    if plan.spiking:
        return _spiking_forward(plan, weights, x)
    if plan.fixed:
        a = shift(x.astype(np.int64) @ weights["hidden"].T.astype(np.int64),
                  plan.hidden.weight_exp)
        y1 = np.clip(a, 0, int(plan.hidden_max))
        q_raw = shift(y1 @ weights["output"].T.astype(np.int64), plan.output.weight_exp)
        return Forward(q_raw=q_raw, q=q_raw * plan.q_scale, gate=a > 0, payload=y1)
    a = (x * plan.input_scale) @ weights["hidden"].T
    y1 = np.maximum(a, 0)
    q = y1 @ weights["output"].T
    return Forward(q_raw=q, q=q, gate=(a > 0).astype(np.float64), payload=y1)


def _spiking_forward(plan: LearningPlan, weights: dict[str, np.ndarray],
                     x: np.ndarray) -> Forward:
    """T steps of the IF neurons and the li read-out (``hardware.onchip.neurons``)."""
    hidden, readout = spiking_neurons(plan)
    if plan.fixed:
        current = shift(x.astype(np.int64) @ weights["hidden"].T.astype(np.int64),
                        plan.hidden.weight_exp)
        w2 = weights["output"].T.astype(np.int64)
    else:
        current = (x * plan.input_scale) @ weights["hidden"].T
        w2 = weights["output"].T
    state = hidden.start(current.shape)
    read = readout.start((len(x), plan.num_classes))
    for _ in range(plan.timesteps):
        spikes = hidden.step(state, current)
        a = spikes.astype(w2.dtype) @ w2
        read = readout.step(read, shift(a, plan.output.weight_exp) if plan.fixed else a)
    q_raw = readout.q(read, plan.timesteps)
    return Forward(q_raw=q_raw, q=q_raw * plan.q_scale,
                   gate=hidden.gate(state, plan.timesteps),
                   payload=hidden.payload(state, plan.timesteps))


def spiking_neurons(plan: LearningPlan) -> tuple[HiddenIF, Readout]:
    """The hidden IF neurons and the read-out of a spiking plan."""
    return (HiddenIF(plan.fixed, plan.neurons["hidden"]),
            Readout(plan.fixed, plan.neurons["readout"]))


def predict(plan: LearningPlan, x: np.ndarray) -> np.ndarray:
    """Greedy forward pass of the chip's net on integer inputs (N, ...): Q-values (floats)."""
    weights = {name: plan.connection(name).weights for name in CONNECTIONS}
    return forward(plan, weights, _flat(plan, x)).q


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
    trial = _Trial(plan)
    count = len(x)
    records = Trials(actions=np.zeros(count, np.int64), rewards=np.zeros(count),
                     q=np.zeros((count, plan.num_classes)), delta=np.zeros(count))
    for index in range(count):
        trial.run(index, x[index], int(labels[index]), selector, records)
    return plan.with_weights(trial.weights), records


class _Trial:
    """One trial after another, with the chip's state between them (weights, random
    streams)."""

    def __init__(self, plan: LearningPlan) -> None:
        self.plan = plan
        if plan.fixed:
            # Lava truncates a mixed-sign matrix's initial weights to even values once.
            self.weights = {name: (plan.connection(name).weights.astype(np.int32) >> 1) << 1
                            for name in CONNECTIONS}
        else:
            self.weights = {name: plan.connection(name).weights.astype(np.float64).copy()
                            for name in CONNECTIONS}
        self.x_random = engine.RandomStream(plan.trace_seed)
        self.y_random = engine.RandomStream(plan.trace_seed + 2)
        self.w_random = engine.RandomStream(engine.WEIGHT_RNG_SEED)

    def run(self, trial: int, x: np.ndarray, label: int, selector: Selector,
            records: Trials) -> None:
        plan, w = self.plan, self.weights
        out = forward(plan, w, x[None])
        q_raw, gate, payload = out.q_raw[0], out.gate[0], out.payload[0]
        action = selector.choose(out.q[0])
        reward = int(action == label)
        at_action = np.zeros(plan.num_classes, q_raw.dtype)
        if plan.fixed:
            delta = reward * int(plan.reward) - int(q_raw[action])
            at_action[action] = delta
            factor_out = engine.factor_fixed(at_action, plan.output.shift)
            choice = 2 * (factor_out[0] + factor_out[1])
        else:
            delta = reward - float(q_raw[action])
            at_action[action] = delta
            factor_out = engine.factor_float(at_action * plan.output.gain)
            choice = np.zeros(plan.num_classes)
            choice[action] = 2 * abs(delta)
        feedback = shift(w["feedback"].astype(np.int64) @ choice, plan.feedback.weight_exp) \
            if plan.fixed else w["feedback"] @ choice
        sign = np.sign(delta)
        pre = {"hidden": x if plan.fixed else x * plan.input_scale, "output": payload,
               "feedback": choice}
        if plan.fixed:
            factors = {
                "hidden": engine.factor_fixed(sign * feedback * gate, plan.hidden.shift),
                "output": factor_out,
                "feedback": engine.factor_fixed(sign * engine.pre_trace_fixed(payload), 0),
            }
            self._learn_fixed(trial, pre, factors)
        else:
            factors = {
                "hidden": engine.factor_float(sign * feedback * gate * plan.hidden.gain),
                "output": factor_out,
                "feedback": engine.factor_float(sign * payload / 2 * plan.feedback.gain),
            }
            self._learn_float(pre, factors)
        records.q[trial] = out.q[0]
        records.actions[trial] = action
        records.rewards[trial] = reward
        records.delta[trial] = delta * plan.q_scale

    def _learn_float(self, pre: dict, factors: dict) -> None:
        for name in CONNECTIONS:
            connection, steps = self.plan.connection(name), self.plan.spike_step(name)
            x1 = engine.decay_float(pre[name] / 2, steps, X_TAU)
            y2, y3 = (engine.decay_float(y, steps, engine.Y_TAU) for y in factors[name])
            x0 = pre[name] != 0
            self.weights[name] = self.weights[name] + np.outer(y2 - y3, x1 * x0) * (
                connection.mantissa * 2.0**connection.exponent)

    def _learn_fixed(self, trial: int, pre: dict, factors: dict) -> None:
        learn_step = (trial + 1) * self.plan.trial_steps
        x_random = self.x_random[2 * learn_step]
        y_random = self.y_random[2 * learn_step]
        w_random = self.w_random[trial + 1]
        for name in CONNECTIONS:
            connection, steps = self.plan.connection(name), self.plan.spike_step(name)
            x0 = pre[name] != 0
            x1 = engine.decay_fixed(engine.pre_trace_fixed(pre[name]), steps, X_TAU, x_random)
            x1 = np.clip(x1, 0, engine.TRACE_MAX)
            y2, y3 = (engine.decay_fixed(y, steps, engine.Y_TAU, y_random)
                      for y in factors[name])
            self.weights[name] = engine.apply_fixed(self.weights[name], x0, x1, y2, y3,
                                                    connection.mantissa, connection.exponent,
                                                    w_random)
