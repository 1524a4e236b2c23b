"""Run an export on Lava's Loihi 2 simulator (inside ``.venv-lava``)::

    python -m hardware.run EXPORT_DIR --inputs X.npy --out Q.npy [--float]
        [--timing TIMING.json] [--dense-model lava|blas] [--per-sample]

Reads uint8 inputs (N, C, H, W), streams them through the network once compiled, and
writes the Q-values (N, num_classes): int64 in fixed point (default), float64 with
``--float``; for spiking exports the read-out's v after each sample's T steps
(``hardware.spiking``). ``--timing`` writes {samples, seconds_build, seconds_run,
samples_per_second, mode, dense_model, method}. ``--per-sample`` runs the slow
way (a Var set, a few steps and a Var get per sample), only to measure it.
Errors: one line on stderr, exit code 2.
Interrupted by SIGINT or SIGTERM: the Lava runtime is stopped, exit code 130 or 143.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hardware.errors import HardwareError, command_exit


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return command_exit(lambda: _run(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hardware.run",
        description="Run an exported network on Lava's Loihi 2 simulator.",
    )
    parser.add_argument("export_dir", help="export folder (manifest.json + arrays)")
    parser.add_argument("--inputs", required=True, help=".npy of uint8 inputs (N, C, H, W)")
    parser.add_argument("--out", required=True, help=".npy to write the Q-values to")
    parser.add_argument("--float", action="store_true", help="floating point instead of fixed")
    parser.add_argument("--timing", help="JSON file to write the timing to")
    parser.add_argument(
        "--dense-model",
        choices=("lava", "blas"),
        default="lava",
        help="fixed-point Dense model: Lava's own, or the bit-identical exact-BLAS one",
    )
    parser.add_argument(
        "--per-sample",
        action="store_true",
        help="set/run/get one sample at a time instead of streaming (for comparison)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        from hardware.lava import run_on_lava, run_on_lava_per_sample
    except ImportError as error:
        raise HardwareError(
            f"the Lava backend cannot be imported ({error}); run inside .venv-lava"
        ) from None
    from hardware.format import load_export

    net = load_export(args.export_dir)
    inputs = _load_inputs(Path(args.inputs))
    mode = "float" if args.float else "fixed"
    runner = run_on_lava_per_sample if args.per_sample else run_on_lava
    result = runner(net, inputs, mode=mode, dense_model=args.dense_model)
    _write(Path(args.out), lambda path: _save_npy(path, result.q))
    if args.timing:
        timing = {
            "samples": len(result.q),
            "seconds_build": result.seconds_build,
            "seconds_run": result.seconds_run,
            "samples_per_second": result.samples_per_second,
            "mode": mode,
            "dense_model": args.dense_model,
            "method": "per_sample" if args.per_sample else "streaming",
        }
        _write(Path(args.timing), lambda path: path.write_text(json.dumps(timing, indent=2)))
    return 0


def _load_inputs(path: Path) -> np.ndarray:
    try:
        inputs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise HardwareError(
            f"cannot read inputs {path} ({error}); pass a .npy of uint8 (N, C, H, W)"
        ) from None
    if inputs.dtype != np.uint8:
        raise HardwareError(
            f"inputs {path} have dtype {inputs.dtype}, expected uint8; pass raw pixels"
        )
    return inputs


def _save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to exactly ``path`` (np.save on a name would append ".npy")."""
    with path.open("wb") as handle:
        np.save(handle, array)


def _write(path: Path, write: Callable[[Path], object]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as error:
        raise HardwareError(f"cannot write {path} ({error}); choose a writable path") from None


if __name__ == "__main__":
    sys.exit(main())
