"""The autograd baselines: softmax + cross-entropy through autograd.

    loss = mean_b -log softmax(q_b)[y_b],   .grad = dloss/dtheta (autograd)

``ebp`` is error backpropagation on a rate net; ``bptt`` the same through the T steps of a
spiking net (backpropagation through time, the spike's derivative replaced by the surrogate
psi of ``neuroprop.neurons.lif``, the reset detached), the way snnTorch users train. Reward
is 1 where argmax q is the label. Both train the same Network, built without feedback
weights; autograd goes through the batch-norm statistic (m2), unlike BrainProp's local gain.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from neuroprop.network import Network
from neuroprop.rules.base import StepResult


class Autograd:
    """The autograd rule named ``name`` ("ebp" for rate nets, "bptt" for spiking nets)."""

    def __init__(self, name: str = "ebp") -> None:
        self.name = name

    def step(self, net: Network, x: Tensor, y: Tensor) -> StepResult:
        net.zero_grad(set_to_none=True)
        q = net(x, cache=False)
        loss = F.cross_entropy(q, y, reduction="none")
        loss.mean().backward()
        return StepResult(
            reward_sum=float((q.detach().argmax(dim=1) == y).sum()),
            loss_sum=float(loss.detach().sum()),
            count=int(x.shape[0]),
        )
