"""Action selection of an on-chip learning run, shared by the Lava selector process and
the numpy model so that both pick the same actions from the same seed.

Max-Boltzmann, per trial: u = rng.random(); if u < epsilon, the action is drawn from
softmax(q / temperature) by inverse transform with a second draw; otherwise it is
argmax q (the first maximum). Forced actions (a sequence given in advance) replace the
choice but not the reward, which still comes from the label.
"""

from __future__ import annotations

import numpy as np


class Selector:
    """Picks actions for consecutive trials (module docstring)."""

    def __init__(self, seed: int, epsilon: float, temperature: float,
                 forced: np.ndarray | None = None) -> None:
        self._rng = np.random.default_rng(seed)
        self.epsilon = epsilon
        self.temperature = temperature
        self._forced = None if forced is None else np.asarray(forced, dtype=np.int64)
        self._trial = 0

    def choose(self, q: np.ndarray) -> int:
        """The action for the next trial, given its Q-values (floats)."""
        trial = self._trial
        self._trial += 1
        if self._forced is not None:
            return int(self._forced[trial])
        q = np.asarray(q, dtype=np.float64)
        if self._rng.random() >= self.epsilon:
            return int(np.argmax(q))
        logits = (q - q.max()) / self.temperature
        weights = np.exp(logits)
        cumulative = np.cumsum(weights / weights.sum())
        index = int(np.searchsorted(cumulative, self._rng.random(), side="right"))
        return min(index, len(q) - 1)
