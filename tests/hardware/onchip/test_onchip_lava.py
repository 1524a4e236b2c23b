"""BrainProp learning on Lava's simulator (hardware.lava.learning, python -m hardware.learn)
against neuroprop's numpy model of it: bit for bit in fixed point, to rounding in float;
and no Lava processes, /dev/shm segments or temp folders left after an error or Ctrl-C."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from leftovers import interruptible, kill_group, segments

LAVA_MISSING = "lava-nc not installed (run in .venv-lava)"
pytest.importorskip("lava.magma.core.run_configs", reason=LAVA_MISSING)

from hardware.lava.learning import learn_on_lava  # noqa: E402
from hardware.onchip.model import learn  # noqa: E402
from hardware.onchip.plan import CONNECTIONS, plan_learning, save_plan  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
TRIALS = 200




def _temp_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("neuroprop-learn-*")}


@pytest.fixture
def no_leftovers():
    before, folders = segments(), _temp_folders()
    yield
    assert multiprocessing.active_children() == []
    assert segments() - before == set()
    assert _temp_folders() - folders == set()


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed_pt", "floating_pt"])
def test_lava_learning_equals_the_numpy_model(any_learnable, trials, fixed, no_leftovers):
    x, labels = trials(TRIALS)
    plan = plan_learning(any_learnable(), fixed=fixed, learning_rate=0.05, epsilon=0.3,
                         calibration=x, seed=5)
    model_plan, model_trials = learn(plan, x, labels)
    lava = learn_on_lava(plan, x, labels)
    np.testing.assert_array_equal(lava.trials.actions, model_trials.actions)
    np.testing.assert_array_equal(lava.trials.rewards, model_trials.rewards)
    assert len(set(model_trials.actions.tolist())) > 5  # exploration really varied them
    for name in CONNECTIONS:
        learned = lava.plan.connection(name).weights
        start = plan.connection(name).weights
        assert (learned != start).sum() > 50, name  # learning happened
        if fixed:
            assert learned.dtype == np.int32
            np.testing.assert_array_equal(learned, model_plan.connection(name).weights)
        else:
            np.testing.assert_allclose(learned, model_plan.connection(name).weights,
                                       rtol=0, atol=1e-12)
    if fixed:
        np.testing.assert_array_equal(lava.trials.q, model_trials.q)
    else:
        np.testing.assert_allclose(lava.trials.q, model_trials.q, rtol=0, atol=1e-12)
        # tied feedback weights stay tied: B2 == W2^T after every update
        np.testing.assert_allclose(lava.plan.feedback.weights, lava.plan.output.weights.T,
                                   rtol=0, atol=1e-12)


def test_forced_actions_are_taken_and_rewarded_by_the_label(learnable, trials, no_leftovers):
    x, labels = trials(30)
    actions = np.arange(30) % 10
    plan = plan_learning(learnable(), fixed=True, learning_rate=0.05, calibration=x)
    lava = learn_on_lava(plan, x, labels, actions)
    np.testing.assert_array_equal(lava.trials.actions, actions)
    np.testing.assert_array_equal(lava.trials.rewards, (actions == labels).astype(float))


def _learn_cli(tmp_path: Path, learnable, trials, count: int, labels=None) -> subprocess.Popen:
    x, y = trials(count)
    plan = plan_learning(learnable(hidden=64), fixed=True, learning_rate=0.05, calibration=x)
    save_plan(plan, tmp_path / "plan")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y if labels is None else labels)
    return subprocess.Popen(
        [sys.executable, "-m", "hardware.learn", str(tmp_path / "plan"), "--inputs",
         str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--out",
         str(tmp_path / "out")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=interruptible,
        start_new_session=True)


def test_cli_writes_the_learned_plan_trials_and_timing(learnable, trials, tmp_path,
                                                       no_leftovers):
    process = _learn_cli(tmp_path, learnable, trials, 20)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "plan.json", "weights.npz", "trials.npy", "timing.json"}
    assert np.load(tmp_path / "out" / "trials.npy").shape == (20, 13)


def test_cli_error_is_one_line_and_leaves_nothing(learnable, trials, tmp_path, no_leftovers):
    process = _learn_cli(tmp_path, learnable, trials, 20, labels=np.zeros(3, np.int64))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.strip().count("\n") == 0 and stderr.startswith("error: ")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_learning_stops_lava_and_leaves_nothing(learnable, trials, tmp_path, sig):
    before, folders = segments(), _temp_folders()
    process = _learn_cli(tmp_path, learnable, trials, 5000)
    time.sleep(6)
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(sig)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        kill_group(process)
    assert process.returncode == 128 + sig, stderr
    assert "Lava runtime stopped" in stderr
    assert segments() - before == set()
    assert _temp_folders() - folders == set()
    assert not (tmp_path / "out").exists()
