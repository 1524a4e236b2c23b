"""A trained rate net converted to a spiking net by threshold balancing."""

import json

import pytest
import torch

from neuroprop.cli import main
from neuroprop.config import CONFIG_DIR
from neuroprop.training.trainer import load_trained


@pytest.fixture(scope="module")
def rate_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("convert") / "rate"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=20"]) == 0
    return run


def test_converted_net_keeps_the_rate_accuracy_and_is_a_spiking_run(rate_run, tmp_path, capsys):
    out = tmp_path / "spiking"
    assert main(["convert", str(rate_run), "--timesteps", "32", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["substrate"] == "spiking" and summary["timesteps"] == 32
    # threshold balancing keeps the accuracy within 2 points at T = 32 (measured: -0.3)
    assert summary["test_accuracy"] >= summary["rate_test_accuracy"] - 0.02, summary
    exp = load_trained(out)
    assert exp.spec.spiking and exp.spec.timesteps == 32
    layers = [layer for layer in exp.network.layers if hasattr(layer, "weight")]
    assert [layer.spec.neuron.kind for layer in layers] == ["lif", "li"]
    assert layers[0].spec.neuron.vth == pytest.approx(summary["thresholds"][0])
    rate = load_trained(rate_run)
    torch.testing.assert_close(layers[0].weight, rate.network.layers[1].weight)
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == summary["test_accuracy"]


def test_convert_refuses_with_one_line(rate_run, tmp_path, capsys):
    spiking = tmp_path / "spiking-run"
    assert main(["train", "--config", str(CONFIG_DIR / "digits_spiking.yaml"), "--run-dir",
                 str(spiking), "--no-progress", "training.max_epochs=1"]) == 0
    cases = [
        ([str(spiking)], "is a spiking run already; convert a rate run"),
        ([str(rate_run), "--out", str(rate_run)], "already exists"),
        ([str(rate_run), "--percentile", "0"], "expected a number in (0, 100]"),
        ([str(rate_run), "--timesteps", "0", "--out", str(tmp_path / "t0")],
         "expected an integer T >= 1"),
    ]
    capsys.readouterr()
    for argv, message in cases:
        assert main(["convert", *argv]) == 2, argv
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("neuroprop: error: ") and message in last, (argv, last)
