"""BrainProp (Q-AGREL): reward-based learning with attention-gated feedback.

One step on a batch (no autograd), the same code for rate and spiking nets:

    q = net(x)                          Q-values, one per class (action); a trial of T steps
    s = max_boltzmann(q, eps, T)        the chosen action
    r = r_correct if s == y else r_wrong   reward (default 1 and 0); the label is used for
                                        nothing else
    delta = r - q_s                     reward-prediction error (global, per trial)
    phi = onehot(s)                     attention feedback from the selected unit

then top-down through the layers (``brainprop_feedback``), with scale_b = -delta_b / B:

    post_l    = phi_l * g_l                         the layer's gate (``gate_``)
    phi_{l-1} = B_l^T post_l                        feedback weights (``propagate``)
    W_l.grad  = sum_b scale_b post_l,b (outer) pre_l,b   = -mean_b delta_b phi g pre
                                                    (``weight_update``; the feedback weight
                                                    gets the same when it learns)

stopping at the lowest layer that learns. With tied feedback on a rate net this equals
autograd's gradient of E = sum_b 1/2 (r_b - q_{s_b})^2 / B with the actions held fixed
(docs/rule.md); on a spiking net, pre and g are the trial means of the eligibility trace
and of the surrogate gate (docs/spiking.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroprop.errors import DivergedError, NeuropropError
from neuroprop.network import Network
from neuroprop.network.layers import NO_FEEDBACK_WEIGHTS
from neuroprop.rules.base import StepResult
from neuroprop.rules.selection import max_boltzmann


@torch.no_grad()
def brainprop_feedback(net: Network, phi: Tensor, delta: Tensor) -> None:
    """BrainProp's top-down pass after a cached forward pass: writes ``.grad`` of every
    trainable parameter (see the module docstring).

    phi (B, num_classes): attention at the output (one-hot of the selected action);
    delta (B,): reward-prediction errors.
    """
    if net.feedback_options is None:
        raise NeuropropError(NO_FEEDBACK_WEIGHTS)
    batch = phi.shape[0]
    if tuple(phi.shape) != (batch, net.spec.num_classes) or tuple(delta.shape) != (batch,):
        raise NeuropropError(
            f"brainprop_feedback: expected phi (B, {net.spec.num_classes}) and delta (B,), "
            f"got {tuple(phi.shape)} and {tuple(delta.shape)}; pass one row per trial"
        )
    scale = delta.to(phi.dtype) * (-1.0 / batch)
    lowest = net.lowest_learning_layer()
    phi = phi.clone()
    for index in range(len(net.layers) - 1, lowest - 1, -1):
        layer = net.layers[index]
        post = layer.gate_(phi)
        below = layer.propagate(post) if index > lowest else None
        if layer.learns:
            for name, update in layer.weight_update(post, scale).items():
                getattr(layer, name).grad = update
            _mirror_into_feedback(layer)
        phi = below


def _mirror_into_feedback(layer: torch.nn.Module) -> None:
    """A learning feedback weight gets the forward weight's update (in a buffer of its own,
    so in-place gradient transforms stay per parameter): tied weights stay tied."""
    feedback = getattr(layer, "feedback_weight", None)
    if feedback is None or feedback is layer.weight or not feedback.requires_grad:
        return
    grad = layer.weight.grad
    if feedback.grad is None or feedback.grad.shape != grad.shape or (
        feedback.grad.dtype != grad.dtype
    ):
        feedback.grad = grad.clone()
    else:
        feedback.grad.copy_(grad)


class BrainProp:
    """The BrainProp rule with max-Boltzmann exploration (``epsilon``, ``temperature``) and
    the rewards ``reward`` = (wrong, correct) of a trial. Shifting both rewards down, e.g.
    (-1, 0), makes Q-values that start near 0 optimistic: an action not yet tried looks
    better than one that failed, so the greedy policy tries them in turn."""

    name = "brainprop"

    def __init__(self, epsilon: float = 0.02, temperature: float = 1.0,
                 reward: tuple[float, float] = (0.0, 1.0)) -> None:
        self.epsilon = epsilon
        self.temperature = temperature
        self.reward = reward

    @torch.no_grad()
    def step(self, net: Network, x: Tensor, y: Tensor) -> StepResult:
        q = net(x, cache=True)
        if not bool(torch.isfinite(q).all()):
            raise DivergedError(
                "training diverged: the Q-values are not finite; lower optimizer.lr "
                "(or check the inputs are scaled to [0, 1])"
            )
        actions = max_boltzmann(q, self.epsilon, self.temperature)
        correct = actions == y
        wrong_reward, correct_reward = self.reward
        reward = torch.where(correct, correct_reward, wrong_reward).to(q.dtype)
        delta = reward - q.gather(1, actions[:, None]).squeeze(1)
        phi = torch.zeros_like(q).scatter_(1, actions[:, None], 1.0)
        brainprop_feedback(net, phi, delta)
        return StepResult(
            reward_sum=float(correct.sum()),
            loss_sum=0.5 * float(delta.square().sum()),
            count=int(x.shape[0]),
        )
