"""max_boltzmann: greedy with probability 1 - eps, else a softmax(q / T) sample."""

from __future__ import annotations

import math

import pytest
import torch

from neuroprop.rules import max_boltzmann

TRIALS = 40_000


def frequencies(q: torch.Tensor, epsilon: float, temperature: float) -> torch.Tensor:
    actions = max_boltzmann(q.expand(TRIALS, -1), epsilon, temperature)
    assert actions.shape == (TRIALS,)
    return torch.bincount(actions, minlength=q.shape[1]).double() / TRIALS


@pytest.mark.parametrize(("epsilon", "temperature"), [(0.3, 1.0), (0.5, 0.5), (1.0, 2.0)])
def test_action_frequencies_match_max_boltzmann(epsilon: float, temperature: float) -> None:
    torch.manual_seed(0)
    q = torch.tensor([[0.2, 1.0, -0.5, 0.7, 0.1]], dtype=torch.float64)
    softmax = torch.softmax(q[0] / temperature, dim=0)
    expected = epsilon * softmax
    expected[1] += 1.0 - epsilon  # the argmax
    observed = frequencies(q, epsilon, temperature)
    for action in range(q.shape[1]):
        p = float(expected[action])
        sd = math.sqrt(p * (1.0 - p) / TRIALS)
        assert abs(float(observed[action]) - p) < 5 * sd, (action, float(observed[action]), p)


def test_zero_epsilon_is_greedy_per_row() -> None:
    torch.manual_seed(1)
    q = torch.randn(256, 7)
    assert torch.equal(max_boltzmann(q, 0.0, 1.0), q.argmax(dim=1))


def test_rows_are_independent() -> None:
    torch.manual_seed(2)
    q = torch.zeros(TRIALS, 2)
    q[:, 1] = 10.0  # greedy = 1, softmax puts ~all mass on 1 as well
    q[::2, 0] = 20.0  # even rows: greedy = 0
    actions = max_boltzmann(q, 0.1, 1.0)
    assert (actions[::2] == 0).double().mean() > 0.99
    assert (actions[1::2] == 1).double().mean() > 0.99
