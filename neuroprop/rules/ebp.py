"""The error-backpropagation baseline: softmax + cross-entropy through autograd.

    loss = mean_b -log softmax(q_b)[y_b],   .grad = dloss/dtheta (autograd)

Reward is 1 where argmax q is the label. It trains the same Network, built without
feedback weights; autograd goes through the batch-norm statistic (m2), unlike BrainProp's
local gain.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from neuroprop.network import Network
from neuroprop.rules.base import StepResult


class EBP:
    name = "ebp"

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
