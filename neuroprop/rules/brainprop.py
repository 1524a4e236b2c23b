"""BrainProp (Q-AGREL): reward-based learning with attention-gated feedback.

One step on a batch (no autograd):

    q = net(x)                          Q-values, one per class (action)
    s = max_boltzmann(q, eps, T)        the chosen action
    r = 1[s == y]                       reward; the label is used for nothing else
    delta = r - q_s                     reward-prediction error (global, per trial)
    phi = onehot(s)                     attention feedback from the selected unit
    net.feedback(phi, delta)            every synapse: dW = -grad = mean_b delta phi g y_pre

With tied feedback this equals autograd's gradient of E = sum_b 1/2 (r_b - q_{s_b})^2 / B
with the actions held fixed (see docs/rule.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroprop.errors import DivergedError
from neuroprop.network import Network
from neuroprop.rules.base import StepResult
from neuroprop.rules.selection import max_boltzmann


class BrainProp:
    """The BrainProp rule with max-Boltzmann exploration (``epsilon``, ``temperature``)."""

    name = "brainprop"

    def __init__(self, epsilon: float = 0.02, temperature: float = 1.0) -> None:
        self.epsilon = epsilon
        self.temperature = temperature

    @torch.no_grad()
    def step(self, net: Network, x: Tensor, y: Tensor) -> StepResult:
        q = net(x, cache=True)
        if not bool(torch.isfinite(q).all()):
            raise DivergedError(
                "training diverged: the Q-values are not finite; lower optimizer.lr "
                "(or check the inputs are scaled to [0, 1])"
            )
        actions = max_boltzmann(q, self.epsilon, self.temperature)
        reward = (actions == y).to(q.dtype)
        delta = reward - q.gather(1, actions[:, None]).squeeze(1)
        phi = torch.zeros_like(q).scatter_(1, actions[:, None], 1.0)
        net.feedback(phi, delta)
        return StepResult(
            reward_sum=float(reward.sum()),
            loss_sum=0.5 * float(delta.square().sum()),
            count=int(x.shape[0]),
        )
