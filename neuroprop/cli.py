"""The ``neuroprop`` command line: train, sweep, evaluate, plot, export, import, convert,
compare, run, learn.

Every user-facing problem ends as one line ``neuroprop: error: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hardware.errors import HardwareError
from neuroprop.errors import Interrupted, NeuropropError


def _default_run_dir(config_name: str, rule: str) -> Path:
    """A new folder runs/<time>-<config>-<rule>, with -2, -3, ... when that name is taken
    (created here, so that two runs started in the same second never share one)."""
    stem = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{config_name}-{rule}"
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            path = stem if attempt == 1 else stem.with_name(f"{stem.name}-{attempt}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as error:
        raise NeuropropError(f"cannot create a run directory in {stem.parent.resolve()} "
                             f"({error.strerror}); pass a writable --run-dir") from None
    raise NeuropropError(f"{stem}: 999 runs of that name already; pass --run-dir")


def cmd_train(args: argparse.Namespace) -> None:
    from neuroprop.config import load_config
    from neuroprop.training.trainer import CONFIG, Trainer

    config_path = args.config
    if args.resume and config_path is None:
        if args.run_dir is None:
            raise NeuropropError("--resume needs --run-dir: the run to continue")
        config_path = Path(args.run_dir) / CONFIG
        if not config_path.is_file():
            raise NeuropropError(f"{args.run_dir}: nothing to resume (no {CONFIG}); "
                                 "start it without --resume")
    config = load_config(config_path, args.overrides)
    run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(config.name,
                                                                       config.rule_name)
    print(f"run directory: {run_dir}", file=sys.stderr)
    summary = Trainer(config, run_dir, data_dir=args.data_dir,
                      progress=False if args.no_progress else None,
                      init_from=args.init_from).run(resume=args.resume)
    print(f"{summary['rule']} on {summary['dataset']}: best epoch {summary['best_epoch']} "
          f"of {summary['epochs']}, validation accuracy {summary['val_accuracy']:.4f}, "
          f"test accuracy {summary['test_accuracy']:.4f}, "
          f"{summary['seconds_per_epoch']:.2f} s/epoch  ({run_dir / 'summary.json'})")


def cmd_sweep(args: argparse.Namespace) -> None:
    from neuroprop.sweep.plan import plan_sweep
    from neuroprop.sweep.sweep import run_sweep

    plan = plan_sweep(args.config, args.overrides, args.seeds, args.grid)
    out = args.out if args.out is not None else Path("sweeps") / Path(args.config).stem
    summary, table = run_sweep(plan, out, address=args.address, workers=args.workers,
                               data_dir=args.data_dir,
                               progress=False if args.no_progress else None)
    print(table, end="")
    print(f"written to {out}/summary.md, summary.json, runs.jsonl and curves.png",
          file=sys.stderr)
    if summary["failed"]:
        raise NeuropropError(f"{summary['failed']} of {summary['runs']} runs failed, each "
                             f"named with its error in {out}/summary.md; fix the cause and "
                             "run the same command again (finished runs are kept)")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from neuroprop.training.trainer import accuracy, load_trained

    exp = load_trained(Path(args.run_dir), data_dir=args.data_dir)
    batch = exp.config.training.eval_batch_size
    result = {"run_dir": str(args.run_dir),
              "val_accuracy": accuracy(exp.network, exp.dataset.val, batch),
              "test_accuracy": accuracy(exp.network, exp.dataset.test, batch)}
    print(json.dumps(result))


def cmd_plot(args: argparse.Namespace) -> None:
    from neuroprop.training.metrics import read_summary
    from neuroprop.training.plot import plot_learning_curves

    runs = {}
    for run_dir in map(Path, args.run_dirs):
        summary_path = run_dir / "summary.json"
        if not (run_dir / "metrics.jsonl").is_file():
            raise NeuropropError(f"{run_dir}: no metrics.jsonl; pass run directories of "
                                 "'neuroprop train'")
        label = run_dir.name
        if summary_path.is_file():
            summary = read_summary(summary_path)
            label = f"{summary['rule']} ({summary['dataset']}, {run_dir.name})"
        runs[label] = run_dir
    print(plot_learning_curves(runs, Path(args.out)))


def cmd_export(args: argparse.Namespace) -> None:
    if args.target == "nir":
        from neuroprop.interchange.nir_export import export_nir

        path, report = export_nir(Path(args.run_dir), out=args.out, dt=args.dt,
                                  data_dir=args.data_dir)
        print(report)
        print(f"NIR graph written to {path}")
        return
    from neuroprop.deploy.export import export_run

    export_dir, report = export_run(Path(args.run_dir), out=args.out, data_dir=args.data_dir,
                                    calibration_samples=args.calibration)
    print(report)
    print(f"export written to {export_dir}")


def cmd_import(args: argparse.Namespace) -> None:
    from neuroprop.interchange.nir_import import import_nir

    out, report = import_nir(args.file, args.out, dataset=args.dataset,
                             timesteps=args.timesteps, dt=args.dt)
    print(report)
    print(f"imported into {out}; next: neuroprop evaluate {out}, neuroprop train --config "
          f"{out / 'config.yaml'} --init-from {out}, neuroprop export --target lava {out}")


def cmd_convert(args: argparse.Namespace) -> None:
    from neuroprop.deploy.convert import convert_run

    out = args.out if args.out is not None else Path(f"{args.run_dir}-spiking-T{args.timesteps}")
    summary = convert_run(args.run_dir, out, args.timesteps, percentile=args.percentile,
                          calibration=args.calibration, data_dir=args.data_dir)
    print(f"spiking run written to {summary['run_dir']}: T = {args.timesteps}, test accuracy "
          f"{summary['test_accuracy']:.4f} (rate net {summary['rate_test_accuracy']:.4f}), "
          f"thresholds {', '.join(f'{v:.3g}' for v in summary['thresholds'])}")


def cmd_compare(args: argparse.Namespace) -> None:
    from neuroprop.deploy.compare import check_budgets, compare_run, render

    try:
        timesteps = [int(t) for t in args.timesteps.split(",")]
    except ValueError:
        raise NeuropropError(f"--timesteps {args.timesteps!r}: expected integers separated "
                             "by commas, e.g. 4,8,16,32") from None
    result = compare_run(args.run_dir, timesteps, split=args.split, limit=args.limit,
                         data_dir=args.data_dir, out=args.out)
    print(render(result))
    print(f"written to {result['out']}/compare.json and compare.png")
    if args.budgets is not None:
        over = check_budgets(result, args.budgets)
        if over:
            raise NeuropropError(f"over budget: {'; '.join(over)}")
        print(f"every stage within the budgets of {args.budgets}")


def cmd_run(args: argparse.Namespace) -> None:
    from neuroprop.deploy.run import run_export

    summary = run_export(Path(args.export_dir), split=args.split, limit=args.limit,
                         use_float=args.float, data_dir=args.data_dir,
                         dense_model=args.dense_model, per_sample=args.per_sample)
    print(summary["table"])


def _classes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise NeuropropError(f"--classes {text}: expected comma-separated labels, e.g. 5,6,7"
                             ) from None


def cmd_learn(args: argparse.Namespace) -> None:
    from neuroprop.deploy.learn import learn_on_chip

    export_dir = Path(args.export_dir)
    mode = "float" if args.float else "fixed"
    default = export_dir.with_name(f"{export_dir.name}-learned-{mode}")
    out = args.out if args.out is not None else default
    summary = learn_on_chip(
        export_dir, out, target=args.target, use_float=args.float, split=args.split,
        limit=args.limit, epochs=args.epochs, learning_rate=args.lr, epsilon=args.epsilon,
        temperature=args.temperature, seed=args.seed, scratch=args.scratch,
        classes=_classes(args.classes), data_dir=args.data_dir)
    before, after = summary["test_accuracy_before"], summary["test_accuracy_after"]
    groups = "".join(f", {name} {before[name]:.4f} -> {after[name]:.4f}"
                     for name in after if name != "all" and name in before)
    print(f"{summary['trials']} trials on {args.target} ({summary['mode']}), "
          f"{summary['trials_per_second']:.0f} trials/s; test accuracy "
          f"{before['all']:.4f} -> {after['all']:.4f}{groups}  ({out / 'learn_summary.json'})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroprop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a network (default: small dense net on digits)")
    train.add_argument("--config", type=Path, help="experiment YAML (default: "
                       "configs/digits_dense.yaml)")
    train.add_argument("overrides", nargs="*", metavar="key=value",
                       help="override config keys, e.g. rule=ebp optimizer.lr=0.05")
    train.add_argument("--run-dir", type=Path, help="where the run is written "
                       "(default: runs/<time>-<config>-<rule>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    train.add_argument("--init-from", type=Path, metavar="SOURCE",
                       help="start from the weights of a run directory, an import folder "
                       "(neuroprop import) or a checkpoint file")
    train.add_argument("--data-dir", help="dataset folder (default: $NEUROPROP_DATA_DIR or ./data)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    sweep = sub.add_parser("sweep", help="seeds x grid values, each an ordinary run, on Ray "
                           "(local, or a cluster with --address); mean (sd) table")
    sweep.add_argument("config", type=Path, help="experiment YAML, e.g. configs/mnist_dense.yaml")
    sweep.add_argument("overrides", nargs="*", metavar="key=value",
                       help="overrides for every run (before the options)")
    sweep.add_argument("--seeds", default="0-9", help="seeds: 0-9 (default), 3, or 0,2,5-7")
    sweep.add_argument("--grid", nargs="+", action="extend", default=[], metavar="key=v1,v2",
                       help="the values of a key to sweep; several keys: every combination")
    sweep.add_argument("--address", help="HOST:PORT of a running Ray cluster's head "
                       "(default: a local Ray started for the sweep)")
    sweep.add_argument("--workers", type=int, help="runs at once (default: this machine's "
                       "CPUs for a local Ray; every free CPU of a cluster)")
    sweep.add_argument("--out", type=Path, help="the sweep directory (default: "
                       "sweeps/<config name>); the same command again resumes it")
    sweep.add_argument("--data-dir", help="dataset folder (on a cluster: the same path on "
                       "every node)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)

    evaluate = sub.add_parser("evaluate", help="re-score a saved run on validation and test")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--data-dir")
    evaluate.set_defaults(func=cmd_evaluate)

    plot = sub.add_parser("plot", help="validation accuracy per epoch of several runs, one figure")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", default="learning_curves.png")
    plot.set_defaults(func=cmd_plot)

    export = sub.add_parser("export", help="export a trained run for neuromorphic hardware "
                            "(lava) or as a NIR graph (nir)")
    export.add_argument("--target", choices=["lava", "nir"], required=True)
    export.add_argument("run_dir", type=Path)
    export.add_argument("--out", type=Path, help="export folder (default: RUN_DIR/export-lava) "
                        "or NIR file (default: RUN_DIR/network.nir)")
    export.add_argument("--calibration", type=int, default=1000,
                        help="lava: training samples used to choose the fixed-point exponents")
    export.add_argument("--dt", type=float,
                        help="nir: seconds per time step in the written time constants "
                        "(default 1e-4, snnTorch's)")
    export.add_argument("--data-dir")
    export.set_defaults(func=cmd_export)

    importer = sub.add_parser("import", help="a NIR graph (snnTorch, norse, neuroprop) as a "
                              "network description and weights")
    importer.add_argument("file", type=Path, help="the .nir file")
    importer.add_argument("--out", type=Path, required=True, help="the new folder to write")
    importer.add_argument("--dataset", help="the data the net takes: digits, mnist, ... "
                          "(default: the only dataset whose input and class count fit)")
    importer.add_argument("--timesteps", type=int,
                          help="T steps per trial (default: the file's, else 16)")
    importer.add_argument("--dt", type=float,
                          help="seconds per time step (default: the file's, else 1e-4)")
    importer.set_defaults(func=cmd_import)

    convert = sub.add_parser("convert", help="a trained rate run as a spiking run "
                             "(threshold balancing)")
    convert.add_argument("run_dir", type=Path)
    convert.add_argument("--timesteps", type=int, default=32, help="T steps per trial")
    convert.add_argument("--out", type=Path,
                         help="the spiking run directory (default: RUN_DIR-spiking-T<T>)")
    convert.add_argument("--percentile", type=float, default=100.0,
                         help="threshold = this percentile of each layer's activations")
    convert.add_argument("--calibration", type=int, default=1000,
                         help="training samples used to set the thresholds")
    convert.add_argument("--data-dir")
    convert.set_defaults(func=cmd_convert)

    compare = sub.add_parser("compare", help="score a run at every stage: float, spiking, "
                             "integer model, Lava")
    compare.add_argument("run_dir", type=Path)
    compare.add_argument("--timesteps", default="4,8,16,32",
                         help="the spiking trial lengths T, comma-separated")
    compare.add_argument("--split", choices=["train", "val", "test"], default="test")
    compare.add_argument("--limit", type=int, help="only the first N samples of the split")
    compare.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/compare)")
    compare.add_argument("--budgets", type=Path,
                         help="YAML of stage: largest drop in points; exit 2 if one is over")
    compare.add_argument("--data-dir")
    compare.set_defaults(func=cmd_compare)

    run = sub.add_parser("run", help="run an export on Lava's Loihi simulator")
    run.add_argument("--target", choices=["lava"], required=True)
    run.add_argument("export_dir", type=Path)
    run.add_argument("--split", choices=["train", "val", "test"], default="test")
    run.add_argument("--limit", type=int, help="only the first N samples of the split")
    run.add_argument("--float", action="store_true",
                     help="Lava's floating-point models instead of bit-accurate fixed point")
    run.add_argument("--dense-model", choices=["lava", "blas"], default="lava",
                     help="fixed-point Dense model: Lava's own (default) or neuroprop's "
                     "bit-identical BLAS subclass of it (faster)")
    run.add_argument("--per-sample", action="store_true",
                     help="the slow way, one Var set/run/get per sample (to measure it)")
    run.add_argument("--data-dir")
    run.set_defaults(func=cmd_run)

    learn = sub.add_parser("learn", help="keep learning on the (simulated) chip, from reward")
    learn.add_argument("--target", choices=["lava", "model"], required=True,
                       help="Lava's Loihi simulator, or neuroprop's numpy model of it")
    learn.add_argument("export_dir", type=Path)
    learn.add_argument("--split", choices=["train", "val"], default="train")
    learn.add_argument("--limit", type=int, help="only N samples of the split per epoch")
    learn.add_argument("--epochs", type=int, default=1, help="passes over the samples")
    learn.add_argument("--float", action="store_true",
                       help="Lava's floating-point learning instead of fixed point")
    learn.add_argument("--lr", type=float, default=0.05, help="learning rate per trial")
    learn.add_argument("--epsilon", type=float, default=0.02, help="exploration rate")
    learn.add_argument("--temperature", type=float, default=1.0, help="softmax temperature")
    learn.add_argument("--seed", type=int, default=0)
    learn.add_argument("--scratch", type=float, metavar="STD",
                       help="start from N(0, STD^2) weights instead of the export's")
    learn.add_argument("--classes", help="trials only from these labels, e.g. 5,6,7,8,9")
    learn.add_argument("--out", type=Path,
                       help="output folder (default: EXPORT_DIR-learned-fixed|float)")
    learn.add_argument("--data-dir")
    learn.set_defaults(func=cmd_learn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_interrupts():
            args.func(args)
    except (NeuropropError, HardwareError) as err:
        print(f"neuroprop: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        if not isinstance(interrupt, Interrupted):
            interrupt = Interrupted(signal.SIGINT)
        name = signal.Signals(interrupt.signal_number).name
        print(f"neuroprop: interrupted by {name}; {interrupt.consequence}", file=sys.stderr)
        return 128 + interrupt.signal_number
    return 0


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Inside, SIGTERM raises ``Interrupted`` as SIGINT raises KeyboardInterrupt, so that
    a terminated command unwinds: temporary files and folders are removed on the way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(number: int, frame: object) -> None:
        raise Interrupted(number)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
