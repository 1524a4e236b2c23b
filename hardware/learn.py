"""Learn on Lava's Loihi 2 simulator (inside ``.venv-lava``)::

    python -m hardware.learn PLAN_DIR --inputs X.npy --labels Y.npy --out OUT_DIR
        [--actions A.npy]

Runs one BrainProp trial per input row on Lava (fixed or floating point, as the plan
says: ``hardware.onchip.plan``) and writes into OUT_DIR the plan with the learned
weights (``plan.json``, ``weights.npz``), ``trials.npy`` (per trial: Q-values, action,
reward, RPE) and ``timing.json``. Errors: one line on stderr, exit code 2.
Interrupted by SIGINT or SIGTERM: the Lava runtime is stopped, exit code 130 or 143.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hardware.errors import HardwareError, command_exit


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return command_exit(lambda: _learn(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hardware.learn",
                                     description="BrainProp trials on Lava's Loihi 2 simulator.")
    parser.add_argument("plan_dir", help="learning plan folder (plan.json + weights.npz)")
    parser.add_argument("--inputs", required=True, help=".npy of uint8 inputs (N, ...)")
    parser.add_argument("--labels", required=True, help=".npy of integer labels (N,)")
    parser.add_argument("--actions", help=".npy of forced actions (N,)")
    parser.add_argument("--out", required=True, help="folder for the learned plan and trials")
    return parser


def _learn(args: argparse.Namespace) -> int:
    try:
        from hardware.lava.learning import learn_on_lava
    except ImportError as error:
        raise HardwareError(
            f"the Lava backend cannot be imported ({error}); run inside .venv-lava"
        ) from None
    from hardware.onchip.plan import load_plan, save_plan

    plan = load_plan(Path(args.plan_dir))
    arrays = {name: _load(getattr(args, name), name) for name in ("inputs", "labels", "actions")
              if getattr(args, name)}
    result = learn_on_lava(plan, arrays["inputs"], arrays["labels"], arrays.get("actions"))
    out = Path(args.out)
    save_plan(result.plan, out)
    np.save(out / "trials.npy", result.trials.to_array())
    timing = {"trials": len(result.trials.actions), "seconds_build": result.seconds_build,
              "seconds_run": result.seconds_run, "trials_per_second": result.trials_per_second}
    (out / "timing.json").write_text(json.dumps(timing, indent=2))
    return 0


def _load(path: str, what: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise HardwareError(f"cannot read {what} {path} ({error}); pass a .npy file") from None
    if not np.issubdtype(array.dtype, np.integer):
        raise HardwareError(f"{what} {path} have dtype {array.dtype}; expected integers")
    return array


if __name__ == "__main__":
    sys.exit(main())
