"""How an exported net learns on the chip: the trial's timing, each BrainProp factor's
place in Loihi's traces, and the numbers that make the chip's update equal BrainProp's.

Supported nets (``SHAPE_HINT``): input -> dense -> relu -> dense -> linear (Q-values),
the embedded default's shape; and its spiking form, dense -> IF -> dense -> li read-out,
T steps (the spiking trial: docs/onchip.md; the neurons: ``hardware.onchip.neurons``).
The rate trial is described here; a spiking trial has the same last three steps after
T steps of forward pass. With W1 (H, D) the hidden weights, W2 (A, H) the output weights and
B2 (H, A) the feedback weights (tied: B2 = W2^T), one trial of BrainProp is::

    y1 = relu(W1 x),  q = W2 y1,  s = max_boltzmann(q),  r = [s == label],  d = r - q_s
    phi = B2[:, s],   g = [W1 x > 0]
    dW2[s, :] = lr d y1           (pre y1,         post factor d at unit s)
    dW1       = lr (d phi g) x^T  (pre x,          post factor d phi g)
    dB2[:, s] = lr d y1           (pre |d| at s,   post factor sign(d) y1: the tied update)

On the chip each weight matrix is a ``LearningDense`` whose post neurons send the post
factor as traces y2 = max(f, 0), y3 = max(-f, 0) and whose pre activity is the graded
spike's x1 trace; the rule is ``m 2^e x0 x1 y2 - m 2^e x0 x1 y3``
(``hardware.onchip.arithmetic``). A rate trial takes ``trial_steps`` = T + 3 = 4 steps::

    step 1  the input's graded spike reaches W1                 (W1's pre spike, tx = 1)
    step 2  hidden neurons fire y1 = relu(a), keep g            (W2's pre spike, tx = 2)
    step 3  the selector reads q, picks s, gets r, computes d, and sends a graded
            spike of 2 |d| at unit s to B2                      (B2's pre spike, tx = 3)
            and d to the hidden neurons; its own y traces carry d at unit s
    step 4  B2's feedback 2 |d| phi reaches the hidden neurons, which send
            sign(d) 2 |d| phi g (for W1) and sign(d) y1 (for B2); every LearningDense
            learns at the end of the step

B2's update is W2's with pre and post swapped: W2 multiplies its pre trace (y1 / 2)
by its post trace (|d|, sent by the selector), B2 its pre trace (|d|: the choice spike
2 |d| halved) by its post trace (y1 / 2, sent by the hidden neurons), with the same rule
constant. So in fixed point both see the same integers, and tied weights stay tied up to
the rare one-unit trace decays that Lava draws for each matrix separately.

Float (``floating_pt``): the rule constant is 1 and each post neuron multiplies its
factor by a gain: lr, times 2 / payload for the x1 = payload / 2 convention, times
exp(tx / tau_x + tx / tau_y), which undoes the decay the traces see between the pre spike
and the learning step. So the chip's update is BrainProp's, to rounding.

Fixed (``fixed_pt``): weights are 8-bit mantissas with one scale per matrix, chosen with
``weight_headroom`` times the largest initial weight so that learning has room to
grow; hidden activities are integers clipped to [0, 255] (the x1 trace takes 8 bits);
the hidden exponent puts the calibration inputs' largest activity at
255 / ``activity_headroom``; Q-values are q_int * q_scale and the reward is
r_int = round(1 / q_scale). Each post factor f is sent as round(|f| / 2^k) clipped to
7 bits, k chosen so that a typical factor uses the 7 bits, and m 2^e is the rule
constant nearest to the learning rate times the scales; the learning rate actually
realised per matrix is recorded (``Connection.realised_rate``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, layer_name
from hardware.loihi import LIF_DECAY_MAX, LIF_MSB_SHIFT
from hardware.onchip.arithmetic import (
    EXPONENT_RANGE,
    MANTISSA_MAX,
    PRE_PAYLOAD_MAX,
    PRODUCT_DROP_BITS,
    TRACE_MAX,
    Y_TAU,
)

RATE_TIMESTEPS = 1


def trial_steps(timesteps: int) -> int:
    """T + 3 steps a trial: the input on steps 1..T, the hidden neurons on 2..T+1, the
    choice on T+2 (``decision_step``), the feedback on T+3, when every LearningDense
    learns."""
    return timesteps + 3


def decision_step(timesteps: int) -> int:
    """The step on which the selector has q, chooses and sends the choice and the RPE
    (and spiking hidden neurons send their count to W2)."""
    return timesteps + 2

X_TAU = Y_TAU
"""x1's decay constant: Lava's own choice for the y traces, so both decay alike."""
CONNECTIONS = ("hidden", "output", "feedback")


@dataclass(frozen=True)
class Connection:
    """One learning matrix: its weights (post, pre), Dense exponent, rule constant
    m 2^e, and the post neurons' factor scaling (fixed: shift k; float: gain)."""

    weights: np.ndarray
    weight_exp: int
    mantissa: int
    exponent: int
    shift: int
    gain: float
    realised_rate: float

    @property
    def rule(self) -> str:
        """The Loihi3FLearningRule dw string."""
        constant = f"{self.mantissa}*2^{self.exponent}"
        return f"{constant}*x0*x1*y2 - {constant}*x0*x1*y3"


@dataclass(frozen=True)
class LearningPlan:
    """Everything the chip and the numpy model need to run trials (module docstring)."""

    fixed: bool
    input_scale: float
    hidden: Connection
    output: Connection
    feedback: Connection
    weight_scales: dict[str, float]
    """Float value of one weight unit per connection (1.0 in float)."""
    q_scale: float
    reward: float
    """r for a correct action in Q units: r_int in fixed point, 1.0 in float."""
    learning_rate: float
    epsilon: float
    temperature: float
    seed: int
    timesteps: int = RATE_TIMESTEPS
    """T: 1 for rate nets; the spiking net's steps of forward pass per trial."""
    neurons: dict = field(default_factory=dict)
    """Spiking nets: the hidden LIF's and the read-out's parameters (fixed point: du_int,
    dv_int, vth_int; float: du, dv, vth), as ``{"hidden": {...}, "readout": {...}}``."""

    @property
    def spiking(self) -> bool:
        return bool(self.neurons)

    @property
    def trial_steps(self) -> int:
        return trial_steps(self.timesteps)

    @property
    def hidden_max(self) -> float:
        """Largest activity of a rate net's hidden neuron: 255 in fixed point (the pre
        trace takes 8 bits), none in float."""
        return float(PRE_PAYLOAD_MAX) if self.fixed and not self.spiking else math.inf

    def spike_step(self, name: str) -> int:
        """The within-trial step of a connection's (last) pre spike: its x1 and y traces
        decay this many steps before learning. Spiking hidden neurons send their trial's
        spike count as one more graded spike on T + 2."""
        return {"hidden": self.timesteps,
                "output": self.timesteps + (2 if self.spiking else 1),
                "feedback": decision_step(self.timesteps)}[name]

    @property
    def num_classes(self) -> int:
        return int(self.output.weights.shape[0])

    @property
    def trace_seed(self) -> int:
        """The learning rules' rng_seed (traces' stochastic decay)."""
        return self.seed + 1

    def connection(self, name: str) -> Connection:
        return getattr(self, name)

    def with_weights(self, weights: dict[str, np.ndarray]) -> LearningPlan:
        """The same plan with new weights (after learning)."""
        return replace(self, **{name: replace(self.connection(name), weights=weights[name])
                                for name in weights})

    def with_gains(self, gains: dict[str, float]) -> LearningPlan:
        """The same plan with these float factor gains (realised rate: the plan's)."""
        return replace(self, **{name: replace(self.connection(name), gain=gain,
                                              realised_rate=self.learning_rate)
                                for name, gain in gains.items()})

    def float_weights(self) -> dict[str, np.ndarray]:
        """Each connection's weights as floats (mantissa times its scale)."""
        return {name: self.connection(name).weights.astype(np.float64) * self.weight_scales[name]
                for name in CONNECTIONS}

    def summary(self) -> dict:
        """JSON-ready parameters (no weights)."""
        return {
            "mode": "fixed_pt" if self.fixed else "floating_pt",
            "substrate": "spiking" if self.spiking else "rate",
            "timesteps": self.timesteps,
            "neurons": self.neurons,
            "trial_steps": self.trial_steps,
            "learning_rate": self.learning_rate,
            "epsilon": self.epsilon,
            "temperature": self.temperature,
            "seed": self.seed,
            "q_scale": self.q_scale,
            "reward": self.reward,
            "hidden_max": self.hidden_max,
            "weight_scales": self.weight_scales,
            "connections": {
                name: {"rule": c.rule, "weight_exp": c.weight_exp, "shift": c.shift,
                       "gain": c.gain, "realised_rate": c.realised_rate,
                       "spike_step": self.spike_step(name)}
                for name, c in ((n, self.connection(n)) for n in CONNECTIONS)
            },
        }


SHAPE_HINT = ("rate nets dense(relu) -> dense(linear), or spiking nets dense(lif) -> "
              "dense(li) with du = 1, dv = 0 (one hidden layer)")


def check_learnable(net: HardwareNetwork) -> tuple[np.ndarray, np.ndarray]:
    """The float (W1, W2) of a net of a supported shape (``SHAPE_HINT``), else one
    HardwareError."""
    shape = " -> ".join(
        f"{layer.type}({(layer.neuron or {}).get('kind', '')})".replace("()", "")
        for layer in net.layers
    )
    kinds = [(layer.type, (layer.neuron or {}).get("kind")) for layer in net.layers]
    if kinds and kinds[0] == ("flatten", None):
        kinds = kinds[1:]
    expected = {"rate": [("dense", "relu"), ("dense", "linear")],
                "spiking": [("dense", "lif"), ("dense", "li")]}
    if kinds != expected.get(net.substrate):
        raise HardwareError(f"on-chip learning takes {SHAPE_HINT}; this export is "
                            f"{net.substrate}: {shape}; export such a net (e.g. "
                            "configs/digits_dense.yaml or configs/digits_spiking.yaml)")
    weights = [layer for layer in net.layers if layer.has_weights]
    for layer in weights if net.substrate == "spiking" else ():
        if float(layer.neuron["du"]) != 1.0 or float(layer.neuron["dv"]) != 0.0:
            raise HardwareError(
                f"on-chip learning of spiking nets takes neurons with du = 1, dv = 0 (the "
                f"factorised eligibility is exact there); this export's {layer.neuron['kind']} "
                f"has du = {layer.neuron['du']}, dv = {layer.neuron['dv']}")
    if net.substrate == "spiking" and net.timesteps > TRACE_MAX:
        raise HardwareError(f"T = {net.timesteps}: a spike count must fit a 7-bit trace; "
                            f"train with network.timesteps <= {TRACE_MAX}")
    for index, layer in enumerate(net.layers):
        if layer.has_weights and layer.weight is None:
            raise HardwareError(f"{layer_name(index, layer)} has no float weights; re-export")
    return weights[0].weight.astype(np.float64), weights[1].weight.astype(np.float64)


def plan_learning(
    net: HardwareNetwork,
    *,
    fixed: bool,
    learning_rate: float,
    epsilon: float = 0.02,
    temperature: float = 1.0,
    seed: int = 0,
    calibration: np.ndarray | None = None,
    weight_headroom: float = 4.0,
    activity_headroom: float = 2.0,
    initial_weights: tuple[np.ndarray, np.ndarray] | None = None,
) -> LearningPlan:
    """The learning plan of ``net`` (module docstring).

    ``initial_weights``: float (W1, W2) to start from instead of the export's (learning
    from scratch); ``calibration``: integer inputs (N, *input_shape) for the hidden
    exponent (fixed-point rate nets).
    """
    w1, w2 = check_learnable(net) if initial_weights is None else initial_weights
    check_learnable(net)
    for name, value in (("learning_rate", learning_rate), ("weight_headroom", weight_headroom),
                        ("activity_headroom", activity_headroom), ("temperature", temperature)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise HardwareError(f"{name} = {value!r}: expected a positive number")
    if not 0 <= epsilon <= 1:
        raise HardwareError(f"epsilon = {epsilon!r}: expected a probability in [0, 1]")
    common = {"learning_rate": float(learning_rate), "epsilon": float(epsilon),
              "temperature": float(temperature), "seed": int(seed),
              "input_scale": float(net.input_scale)}
    if net.substrate == "spiking":
        vth = float(next(layer for layer in net.layers if layer.has_weights).neuron["vth"])
        if not fixed:
            return _float_plan(w1, w2, int(net.timesteps),
                               {"hidden": {"vth": vth}, "readout": {}}, **common)
        return _spiking_fixed_plan(w1, w2, vth, int(net.timesteps), weight_headroom, **common)
    if not fixed:
        return _float_plan(w1, w2, RATE_TIMESTEPS, {}, **common)
    if calibration is None:
        raise HardwareError("fixed-point learning needs calibration inputs to set the hidden "
                            "exponent; pass some training samples")
    x = np.asarray(calibration).reshape(len(calibration), -1).astype(np.int64)
    return _fixed_plan(w1, w2, x, weight_headroom, activity_headroom, **common)


def _gain(learning_rate: float, steps: int, per_payload: float) -> float:
    """Float factor gain: lr, times ``per_payload`` for the pre trace's payload / 2
    convention, with the decay of both traces over ``steps`` steps undone."""
    return learning_rate * per_payload * math.exp(steps / X_TAU + steps / Y_TAU)


def _float_plan(w1: np.ndarray, w2: np.ndarray, timesteps: int, neurons: dict,
                **common: float) -> LearningPlan:
    """Float: the rule constant is 1 and each factor's gain is lr times a payload factor.

    Rate: the output's pre trace is y1 / 2 and the feedback's post factor sign(d) y1 / 2
    (gain 2 each); the hidden factor 2 |d| phi g meets the pre trace x / 2 (gain 1).
    Spiking: the pre traces x / 2 (with 2 |d| phi g), n / T (the count, sent as 2 n / T)
    and |d| (the choice spike 2 |d|), and B2's post factor sign(d) n / T: gain 1 each.
    """
    connections = {name: Connection(weights=np.array(w, dtype=np.float64), weight_exp=0,
                                    mantissa=1, exponent=0, shift=0, gain=1.0,
                                    realised_rate=0.0)
                   for name, w in (("hidden", w1), ("output", w2), ("feedback", w2.T))}
    plan = LearningPlan(fixed=False, **connections, q_scale=1.0, reward=1.0,
                        weight_scales=dict.fromkeys(CONNECTIONS, 1.0), timesteps=timesteps,
                        neurons=neurons, **common)
    lr = common["learning_rate"]
    per_payload = {"hidden": 1.0, "output": 2.0, "feedback": 2.0} if not neurons else (
        dict.fromkeys(CONNECTIONS, 1.0))
    return plan.with_gains({name: _gain(lr, plan.spike_step(name), per_payload[name])
                            for name in CONNECTIONS})


def _fixed_weights(w1: np.ndarray, w2: np.ndarray,
                   weight_headroom: float) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One scale per matrix, ``weight_headroom`` times its largest weight at 254, and the
    mantissas of W1 and W2 (B2 shares W2's scale)."""
    scales = {}
    for name, w in (("hidden", w1), ("output", w2)):
        largest = float(np.abs(w).max())
        if largest == 0:
            raise HardwareError(f"the {name} weights are all zero; nothing to scale learning by")
        scales[name] = weight_headroom * largest / 254
    scales["feedback"] = scales["output"]
    return scales, _mantissas(w1, scales["hidden"]), _mantissas(w2, scales["output"])


def _reward(q_scale: float) -> int:
    """r = 1 in Q units (q = q_int q_scale): the integer the selector rewards with."""
    reward = round(1 / q_scale)
    if not 1 <= reward < 2**22:
        raise HardwareError(f"the reward in Q units ({1 / q_scale:g}) does not fit the chip's "
                            "payload; change the weight headroom")
    return reward


def _mantissas(w: np.ndarray, scale: float) -> np.ndarray:
    """Even 8-bit mantissas (Lava's first-step truncation leaves them as they are)."""
    return (2 * np.round(w / (2 * scale))).clip(-254, 254).astype(np.int32)


def _rule_constant(target: float) -> tuple[int, int] | None:
    """The m 2^e (1 <= m <= 7, e in EXPONENT_RANGE) nearest to ``target`` in log terms,
    or None when target is outside what the rule can state."""
    best = None
    for exponent in range(EXPONENT_RANGE[0], EXPONENT_RANGE[1] + 1):
        for mantissa in range(1, MANTISSA_MAX + 1):
            error = abs(math.log(mantissa * 2.0**exponent / target))
            if best is None or error < best[0]:
                best = (error, mantissa, exponent)
    assert best is not None
    return None if best[0] > math.log(1.5) else (best[1], best[2])


def _fixed_connection(weights: np.ndarray, weight_exp: int, rate_per_unit: float,
                      typical_factor: float, extra_bits: int) -> Connection:
    """Choose the factor shift k and rule constant m 2^e so that
    m 2^(e - 3 - 1 - k) (x1 = pre / 2, y = f / 2^k, the >> 3 of the product) equals
    ``rate_per_unit`` (weight units per unit of pre times factor); ``extra_bits`` adds to
    the 3 + 1 when the pre trace is not pre / 2."""
    shift = max(math.ceil(math.log2(max(typical_factor, 1.0) / TRACE_MAX)), 0)
    for _ in range(64):
        drop = PRODUCT_DROP_BITS + extra_bits + shift
        constant = _rule_constant(rate_per_unit * 2.0**drop)
        if constant is not None:
            mantissa, exponent = constant
            realised = mantissa * 2.0 ** (exponent - drop)
            return Connection(weights=weights, weight_exp=weight_exp, mantissa=mantissa,
                              exponent=exponent, shift=shift, gain=1.0,
                              realised_rate=realised)
        shift += 1 if rate_per_unit * 2.0**drop < 1 else -1
    raise HardwareError(f"learning rate per weight unit {rate_per_unit:g} cannot be stated "
                        "in Loihi's learning rule; change --lr")


def _fixed_plan(w1: np.ndarray, w2: np.ndarray, x: np.ndarray, weight_headroom: float,
                activity_headroom: float, **common: float) -> LearningPlan:
    lr = common["learning_rate"]
    scales, m1, m2 = _fixed_weights(w1, w2, weight_headroom)
    largest_sum = max(float(np.maximum(x @ m1.T.astype(np.int64), 0).max()), 1.0)
    hidden_exp = math.floor(math.log2(PRE_PAYLOAD_MAX / activity_headroom / largest_sum))
    hidden_scale = common["input_scale"] * scales["hidden"] * 2.0**-hidden_exp
    q_scale = hidden_scale * scales["output"]
    reward = _reward(q_scale)
    delta = 2.0 * reward
    # weight units per (pre * factor) unit: dW_int = lr d pre phi / scale
    output_rate = lr * q_scale * hidden_scale / scales["output"]
    output = _fixed_connection(m2, 0, output_rate, delta / 2, 1)
    # the hidden factor is fb = B2_int 2 mu with mu = |d_int| / 2^k_output (the choice spike)
    hidden_rate = (lr * q_scale * scales["output"] * common["input_scale"] * 2.0**output.shift
                   / (2 * scales["hidden"]))
    typical_feedback = 2 * (TRACE_MAX + 1) / 2 * 254 / weight_headroom / 2
    connections = {
        "hidden": _fixed_connection(m1, hidden_exp, hidden_rate, typical_feedback, 1),
        "output": output,
        # W2's update with pre and post swapped: the same constant, the factor unshifted
        "feedback": replace(output, weights=m2.T.copy(), shift=0),
    }
    return LearningPlan(fixed=True, **connections, weight_scales=scales, q_scale=q_scale,
                        reward=float(reward), **common)


PLAN_FILE = "plan.json"
WEIGHTS_FILE = "weights.npz"
PLAN_FORMAT = "neuroprop-learning-plan"


def save_plan(plan: LearningPlan, folder: Path) -> None:
    """``plan.json`` (every number) and ``weights.npz`` (the three matrices) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)
              if f.name not in CONNECTIONS}
    fields["connections"] = {
        name: {f.name: getattr(plan.connection(name), f.name)
               for f in dataclasses.fields(Connection) if f.name != "weights"}
        for name in CONNECTIONS
    }
    (folder / PLAN_FILE).write_text(json.dumps({"format": PLAN_FORMAT, **fields}, indent=2))
    np.savez(folder / WEIGHTS_FILE, **{name: plan.connection(name).weights
                                       for name in CONNECTIONS})


def load_plan(folder: Path) -> LearningPlan:
    """The plan ``save_plan`` wrote; one HardwareError line for anything else."""
    try:
        fields = json.loads((folder / PLAN_FILE).read_text())
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as arrays:
            weights = {name: arrays[name] for name in CONNECTIONS}
        if fields.pop("format") != PLAN_FORMAT:
            raise ValueError("not a learning plan")
        connections = fields.pop("connections")
        return LearningPlan(**fields, **{
            name: Connection(weights=weights[name], **connections[name])
            for name in CONNECTIONS
        })
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise HardwareError(f"{folder}: not a readable learning plan ({error}); write it "
                            "again with neuroprop learn") from None


def _spiking_fixed_plan(w1: np.ndarray, w2: np.ndarray, vth: float, timesteps: int,
                        weight_headroom: float, **common: float) -> LearningPlan:
    """Spiking net (IF neurons, du = 1, dv = 0; li read-out, du = 1, dv = 0), fixed point.

    W1's exponent puts the threshold at about 2^15 input units (vth_int, Loihi's 17-bit
    register, with room for the voltage's 24 bits); the read-out adds a << 6 per step,
    so q = v_int q_scale with q_scale = w2_scale / (64 T). The hidden neurons' gate is
    g_int = sum_t psi_int c with psi_int = max(0, V - |v - V|), V = vth_int << 6 (the
    torch rule's g = g_int / (T V vth_int step1)); their pre spike for W2 is their spike
    count n (graded payload 2 n: x1 = n), and B2's post trace is n too.
    """
    lr, T = common["learning_rate"], timesteps
    scales, m1, m2 = _fixed_weights(w1, w2, weight_headroom)
    exponent = math.floor(math.log2(2**15 * common["input_scale"] * scales["hidden"] / vth))
    step1 = common["input_scale"] * scales["hidden"] * 2.0**-exponent
    vth_int = int(round(vth / step1))
    volts = vth_int << LIF_MSB_SHIFT
    q_scale = scales["output"] / (2**LIF_MSB_SHIFT * T)
    reward = _reward(q_scale)
    # weight units per (pre * factor) unit, as in _fixed_plan; the output's pre is n / T
    output_rate = lr * q_scale / (T * scales["output"])
    output = _fixed_connection(m2, 0, output_rate, reward, 0)
    hidden_rate = (lr * q_scale * scales["output"] * 2.0 ** (output.shift - 1)
                   * common["input_scale"] / (T * volts * vth_int * step1 * scales["hidden"]))
    typical = 2 * (TRACE_MAX + 1) / 2 * 254 / weight_headroom / 2 * T * volts / 4
    connections = {
        "hidden": _fixed_connection(m1, exponent, hidden_rate, typical, 1),
        "output": output,
        "feedback": replace(output, weights=m2.T.copy(), shift=0),
    }
    neurons = {"hidden": {"du_int": LIF_DECAY_MAX, "dv_int": 0, "vth_int": vth_int},
               "readout": {"du_int": LIF_DECAY_MAX, "dv_int": 0}}
    return LearningPlan(fixed=True, **connections, weight_scales=scales, q_scale=q_scale,
                        reward=float(reward), timesteps=T, neurons=neurons,
                        **common)
