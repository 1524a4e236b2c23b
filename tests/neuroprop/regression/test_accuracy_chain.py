"""The accuracy-vs-spiking regression suite: every stage of the chain scored on the same
digits samples must stay within the budgets of budgets.yaml beside this file."""

import json
from pathlib import Path

import pytest

from neuroprop.cli import main
from neuroprop.config import CONFIG_DIR
from neuroprop.deploy.compare import check_budgets
from neuroprop.deploy.lava_env import REPO_ROOT

BUDGETS = Path(__file__).with_name("budgets.yaml")
needs_lava = pytest.mark.skipif(
    not (REPO_ROOT / ".venv-lava" / "bin" / "python").exists(),
    reason="the Lava environment .venv-lava is absent (run 'bash scripts/setup.sh')",
)


def _compare(run, out, timesteps: str, capsys) -> dict:
    code = main(["compare", str(run), "--timesteps", timesteps, "--out", str(out),
                 "--budgets", str(BUDGETS)])
    assert code == 0, capsys.readouterr().err  # no stage over its budget
    assert (out / "compare.png").stat().st_size > 1000
    return json.loads((out / "compare.json").read_text())


@needs_lava
def test_trained_rate_net_stays_within_the_budgets(tmp_path, capsys):
    run = tmp_path / "rate"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=25"]) == 0
    result = _compare(run, tmp_path / "compare", "16", capsys)
    assert [(s["stage"], s["timesteps"]) for s in result["stages"]] == [
        ("float rate", None), ("integer model", None), ("Lava fixed point", None),
        ("spiking float", 16), ("integer model", 16), ("Lava fixed point", 16)]
    assert result["lava_agreement_with_integer_model"] == {"rate": 1.0, "T=16": 1.0}


@needs_lava
def test_trained_spiking_net_stays_within_the_budgets(tmp_path, capsys):
    run = tmp_path / "spiking"
    assert main(["train", "--config", str(CONFIG_DIR / "digits_spiking.yaml"), "--run-dir",
                 str(run), "--no-progress", "training.max_epochs=20"]) == 0
    result = _compare(run, tmp_path / "compare", "16", capsys)
    assert [(s["stage"], s["timesteps"]) for s in result["stages"]] == [
        ("spiking float", 16), ("integer model", 16), ("Lava fixed point", 16)]
    assert result["lava_agreement_with_integer_model"] == {"T=16": 1.0}
    assert result["stages"][0]["accuracy"] >= 0.85


def test_a_stage_over_its_budget_is_named(tmp_path, capsys):
    result = {"stages": [
        {"stage": "float rate", "timesteps": None, "accuracy": 0.95, "drop": None},
        {"stage": "spiking float", "timesteps": 8, "accuracy": 0.90, "drop": -5.0},
        {"stage": "integer model", "timesteps": None, "accuracy": 0.945, "drop": -0.5},
        {"stage": "Lava fixed point", "timesteps": None, "accuracy": 0.94, "drop": -0.5},
    ]}
    assert check_budgets(result, BUDGETS) == [
        "spiking float at T = 8 lost 5.00 points, budget 2.0",
        "Lava fixed point lost 0.50 points, budget 0.0",
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("float: 1\n")
    with pytest.raises(Exception, match="unknown stage 'float'"):
        check_budgets(result, bad)


@needs_lava
def test_trained_conv_spiking_net_on_lava_equals_the_integer_model(tmp_path, capsys):
    run = tmp_path / "conv"
    layers = ("network.layers=[{type: conv2d, channels: 4, kernel: 3, padding: 1}, "
              "{type: dense, units: 64}, {type: output}]")
    assert main(["train", "--config", str(CONFIG_DIR / "digits_spiking.yaml"), "--run-dir",
                 str(run), "--no-progress", "training.max_epochs=8", layers]) == 0
    out = tmp_path / "compare"
    assert main(["compare", str(run), "--timesteps", "8", "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["lava_agreement_with_integer_model"] == {"T=8": 1.0}
    spiking, integer, lava = (s["accuracy"] for s in result["stages"])
    assert spiking >= 0.5 and lava == integer  # 0.66 measured after 8 epochs (chance: 0.1)
