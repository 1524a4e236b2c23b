"""The neurons of an on-chip BrainProp trial (``hardware.onchip.plan`` states the schedule).

``HiddenLearner``: ReLU neurons that keep their gate, receive the RPE and the attention
feedback, and send the post factors of the hidden weights (sign(d) 2|d| phi g) and of the
feedback weights (sign(d) y1) as y traces. ``RewardSelector``: the output units'
read-out, max-Boltzmann selection, the reward from the label and the RPE; it sends a
graded spike of 2 |d| at the chosen unit to the feedback weights, the RPE to the hidden
neurons and the output weights' post factor.
Fixed-point models compute the factors with ``hardware.onchip.arithmetic.factor_fixed``;
float models with the plan's gains.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from hardware.onchip import arithmetic
from hardware.onchip.neurons import HiddenIF, Readout
from hardware.onchip.plan import decision_step, trial_steps
from hardware.onchip.selection import Selector


def _schedule(time_step: int, timesteps: int) -> tuple[int, int]:
    """(trial, 1-based step within it) (``hardware.onchip.plan.trial_steps``)."""
    trial, within = divmod(time_step - 1, trial_steps(timesteps))
    return trial, within + 1


class HiddenLearner(AbstractProcess):
    """Hidden neurons of a learning trial: ReLU (rate) or integrate-and-fire (spiking).
    ``params``: timesteps T, spiking, neuron (the IF parameters), hidden_max, and per
    factor (``hidden``, ``feedback``) its fixed shift or float gain."""

    def __init__(self, *, size: int, params: dict) -> None:
        super().__init__(size=size, params=params)
        self.a_in = InPort(shape=(size,))
        self.fb_in = InPort(shape=(size,))
        self.rpe_in = InPort(shape=(1,))
        self.s_out = OutPort(shape=(size,))
        self.y2_out = OutPort(shape=(size,))
        self.y3_out = OutPort(shape=(size,))
        self.fy2_out = OutPort(shape=(size,))
        self.fy3_out = OutPort(shape=(size,))
        self.y1_out = OutPort(shape=(size,))
        self.bap_out = OutPort(shape=(size,))


class RewardSelector(AbstractProcess):
    """The trial's environment and chooser: presents each input, reads the Q-values,
    selects, rewards from the label, computes the RPE; for spiking nets it is also the
    li read-out. ``params``: timesteps T, spiking, readout (its parameters), inputs_path
    (N, D) rows, labels_path, actions_path (or None), records_path, num_trials, reward,
    q_scale, epsilon, temperature, seed, and the output factor's fixed shift or float
    gain. (One process for all: each process costs every step of every trial.)"""

    def __init__(self, *, size: int, inputs: int, params: dict) -> None:
        super().__init__(size=size, inputs=inputs, params=params)
        self.x_out = OutPort(shape=(inputs,))
        self.q_in = InPort(shape=(size,))
        self.choice_out = OutPort(shape=(size,))
        self.rpe_out = OutPort(shape=(1,))
        self.y2_out = OutPort(shape=(size,))
        self.y3_out = OutPort(shape=(size,))
        self.y1_out = OutPort(shape=(size,))
        self.bap_out = OutPort(shape=(size,))


class _HiddenModel(PyLoihiProcessModel):
    a_in = fb_in = rpe_in = s_out = y2_out = y3_out = fy2_out = fy3_out = None
    y1_out = bap_out = None
    dtype = None
    fixed = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        size = proc_params["size"]
        self.params = p = proc_params["params"]
        self.steps = int(p["timesteps"])
        self.neurons = HiddenIF(self.fixed, p["neuron"]) if p["spiking"] else None
        self.state = None
        self.zeros = np.zeros(size, self.dtype)
        self.no_spikes = np.zeros(size, bool)
        self.payload = self.zeros
        self.gate = self.zeros
        self.sign = 0
        self.factors = {name: (self.zeros, self.zeros) for name in ("hidden", "feedback")}

    def run_spk(self) -> None:
        _, step = _schedule(self.time_step, self.steps)
        a = self.a_in.recv()
        feedback = self.fb_in.recv()
        rpe = self.rpe_in.recv()
        out = self.forward(step, a)
        if step == decision_step(self.steps):
            self.sign = np.sign(rpe[0])
            self.factors["feedback"] = self.factor(
                "feedback", self.sign * self.pre_trace(self.payload))
        if step == trial_steps(self.steps):
            self.factors["hidden"] = self.factor("hidden", self.sign * feedback * self.gate)
        self.s_out.send(out)
        for port_2, port_3, name in ((self.y2_out, self.y3_out, "hidden"),
                                     (self.fy2_out, self.fy3_out, "feedback")):
            port_2.send(self.factors[name][0])
            port_3.send(self.factors[name][1])
        self.y1_out.send(self.zeros)
        self.bap_out.send(self.no_spikes)

    def forward(self, step: int, a: np.ndarray) -> np.ndarray:
        """What the neurons send on this step; keeps the gate and W2's payload."""
        if self.neurons is None:
            out = self.activate(a)
            if step == 2:
                self.payload, self.gate = out, (a > 0).astype(self.gate.dtype)
            return out
        if step == 2:
            self.state = self.neurons.start(a.shape)
        if 2 <= step <= self.steps + 1:
            return self.neurons.step(self.state, a).astype(self.dtype)
        if step == decision_step(self.steps):
            self.payload = self.neurons.payload(self.state, self.steps)
            self.gate = self.neurons.gate(self.state, self.steps)
            return self.payload.astype(self.dtype)
        return self.zeros


@implements(proc=HiddenLearner, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyHiddenLearnerFixed(_HiddenModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    fb_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    rpe_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    y2_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y3_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    fy2_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    fy3_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y1_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    bap_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    dtype = np.int32
    fixed = True

    def activate(self, a: np.ndarray) -> np.ndarray:
        return np.clip(a, 0, int(self.params["hidden_max"])).astype(np.int32)

    def pre_trace(self, payload: np.ndarray) -> np.ndarray:
        """What W2's x1 trace makes of the payload (so that B2 learns W2's update)."""
        return arithmetic.pre_trace_fixed(payload)

    def factor(self, name: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y2, y3 = arithmetic.factor_fixed(values.astype(np.int64), self.params[name])
        return y2.astype(np.int32), y3.astype(np.int32)


@implements(proc=HiddenLearner, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyHiddenLearnerFloat(_HiddenModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    fb_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    rpe_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y3_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    fy2_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    fy3_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y1_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bap_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    dtype = np.float64
    fixed = False

    def activate(self, a: np.ndarray) -> np.ndarray:
        return np.maximum(a, 0.0)

    def pre_trace(self, payload: np.ndarray) -> np.ndarray:
        return payload / 2

    def factor(self, name: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return arithmetic.factor_float(values * self.params[name])


class _SelectorModel(PyLoihiProcessModel):
    x_out = q_in = choice_out = rpe_out = y2_out = y3_out = y1_out = bap_out = None
    dtype = None
    fixed = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        size = proc_params["size"]
        self.params = p = proc_params["params"]
        self.steps = int(p["timesteps"])
        self.readout = Readout(self.fixed, p["readout"]) if p["spiking"] else None
        self.read = None
        self.zeros = np.zeros(size, self.dtype)
        self.no_spikes = np.zeros(size, bool)
        self.no_rpe = np.zeros(1, self.dtype)
        self.choice = self.zeros
        self.rpe = np.zeros(1, self.dtype)
        self.factors = (self.zeros, self.zeros)
        forced = np.load(p["actions_path"]) if p["actions_path"] else None
        self.selector = Selector(p["seed"], p["epsilon"], p["temperature"], forced)
        self.labels = np.load(p["labels_path"])
        self.inputs = None
        self.no_input = np.zeros(proc_params["inputs"], self.dtype)
        self.records = None

    def run_spk(self) -> None:
        trial, step = _schedule(self.time_step, self.steps)
        active = trial < self.params["num_trials"]
        if step <= self.steps and active:
            if self.inputs is None:
                self.inputs = np.load(self.params["inputs_path"], mmap_mode="r")
            self.x_out.send(np.asarray(self.inputs[trial], dtype=self.dtype))
        else:
            self.x_out.send(self.no_input)
        q = self.q_in.recv()
        decision = decision_step(self.steps)
        if self.readout is not None:
            if step == 3:
                self.read = self.readout.start(q.shape)
            if 3 <= step <= decision:
                self.read = self.readout.step(self.read, q)
            q = self.readout.q(self.read, self.steps) if step == decision else q
        if step == decision and active:
            self.decide(trial, q)
        sending = step == decision
        self.choice_out.send(self.choice if sending else self.zeros)
        self.rpe_out.send(self.rpe if sending else self.no_rpe)
        self.y2_out.send(self.factors[0])
        self.y3_out.send(self.factors[1])
        self.y1_out.send(self.zeros)
        self.bap_out.send(self.no_spikes)

    def decide(self, trial: int, q: np.ndarray) -> None:
        p = self.params
        q_float = q * p["q_scale"]
        action = self.selector.choose(q_float)
        reward = int(action == int(self.labels[trial]))
        rpe = self.rpe_of(reward, q[action])
        self.rpe = np.array([rpe], self.dtype)
        at_action = np.zeros(len(self.zeros), self.dtype)
        at_action[action] = rpe
        self.factors = self.factor(at_action)
        self.choice = self.zeros.copy()
        self.choice[action] = self.choice_payload(rpe, self.factors)
        if self.records is None:
            self.records = np.load(p["records_path"], mmap_mode="r+")
        self.records[trial, :-3] = q_float
        self.records[trial, -3:] = (action, reward, rpe * p["q_scale"])


@implements(proc=RewardSelector, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRewardSelectorFixed(_SelectorModel):
    x_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    q_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    choice_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    rpe_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    y2_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y3_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y1_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    bap_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    dtype = np.int32
    fixed = True

    def rpe_of(self, reward: int, q_action: int) -> int:
        return reward * int(self.params["reward"]) - int(q_action)

    def choice_payload(self, rpe: int, factors: tuple[np.ndarray, np.ndarray]) -> int:
        """2 |d| as the output factor holds it: B2's x1 is W2's post trace."""
        return int(2 * (factors[0].sum() + factors[1].sum()))

    def factor(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y2, y3 = arithmetic.factor_fixed(values.astype(np.int64), self.params["output"])
        return y2.astype(np.int32), y3.astype(np.int32)


@implements(proc=RewardSelector, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRewardSelectorFloat(_SelectorModel):
    x_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    q_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    choice_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    rpe_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y3_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y1_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bap_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    dtype = np.float64
    fixed = False

    def rpe_of(self, reward: int, q_action: float) -> float:
        return float(reward) - float(q_action)

    def choice_payload(self, rpe: float, factors: tuple[np.ndarray, np.ndarray]) -> float:
        return 2 * abs(rpe)

    def factor(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return arithmetic.factor_float(values * self.params["output"])
