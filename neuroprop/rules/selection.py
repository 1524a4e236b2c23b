"""Action selection."""

from __future__ import annotations

import torch
from torch import Tensor


def max_boltzmann(q: Tensor, epsilon: float, temperature: float) -> Tensor:
    """Max-Boltzmann actions (B,) for Q-values q (B, A).

    Per trial: with probability 1 - epsilon the greedy action argmax_a q_a; otherwise a
    sample from softmax(q / temperature). So P(argmax) = (1 - eps) + eps * softmax(q/T)_argmax
    and P(a) = eps * softmax(q/T)_a for every other a. Uses the global torch RNG.
    """
    greedy = q.argmax(dim=1)
    if epsilon == 0.0:
        return greedy
    explore = torch.rand(q.shape[0], device=q.device) < epsilon
    sampled = torch.multinomial(torch.softmax(q / temperature, dim=1), 1).squeeze(1)
    return torch.where(explore, sampled, greedy)
