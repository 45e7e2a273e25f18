"""``deepclf bench latency|parity``: latency/throughput scenarios and accuracy parity over targets.

Examples::

    deepclf bench latency keras:runs/basic tflite:models/flowers/1?variant=int8 --threads 2 \\
        --scenario single-stream --scenario concurrency --duration 5 --out results/ --plots
    deepclf bench latency rest://127.0.0.1:8501/flowers?send=bytes grpc://127.0.0.1:8500/flowers \\
        --scenario server --rate 30
    deepclf bench parity keras:runs/basic savedmodel:models/flowers/1 tflite:models/flowers/1?variant=int8 \\
        grpc://127.0.0.1:8500/flowers --images flower_photos --out results/

``latency`` exits 1 only when every target failed; ``parity`` exits 1 when any target failed or missed its
thresholds (so CI can gate on it). Registration is TF-free; TensorFlow is imported only by Keras/SavedModel targets.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from deepclf.errors import UsageError

if TYPE_CHECKING:
    from deepclf.bench.latency import LatencyReport
    from deepclf.bench.parity import ParityReport


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,2,4,8, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,2,4,8, got {text!r}")
    return vals


def _size(text: str) -> tuple[int, int]:
    try:
        h, _, w = text.lower().partition("x")
        size = (int(h), int(w or h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH like 180x180, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return size


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``deepclf bench`` with its ``latency`` and ``parity`` subcommands."""
    from deepclf.bench.scenarios import SCENARIOS  # TF-free

    bench = sub.add_parser(
        "bench",
        help="benchmark latency/throughput and accuracy parity of models and servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bsub = bench.add_subparsers(dest="bench_command", metavar="{latency,parity}")
    bench.set_defaults(func=lambda args: (bench.print_help(), 2)[1])

    target_help = (
        "targets: keras:RUN_DIR, savedmodel:VERSION_DIR, tflite:VERSION_DIR?variant=int8&threads=2, "
        "litert-raw:VERSION_DIR, local:VERSION_DIR?send=bytes, rest://HOST:PORT/MODEL?send=tensor|bytes&codec=stdlib, "
        "grpc://HOST:PORT/MODEL?send=bytes (any: &name=LABEL)"
    )

    def targets_parser(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        # A subcommand over TARGETs: the spec syntax in its description and in the positional's help.
        p = bsub.add_parser(name, help=summary, description=description + " " + target_help)
        p.add_argument("targets", nargs="+", metavar="TARGET", help=target_help)
        return p

    lat = targets_parser(
        "latency",
        "latency and throughput: single-stream, server, offline, concurrency",
        "Measure latency percentiles and throughput.",
    )
    lat.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, "all"],
        default=None,
        help="repeatable (default: single-stream); all = every scenario",
    )
    lat.add_argument(
        "--duration",
        type=_positive_float,
        default=10.0,
        help="seconds per measurement, per concurrency level (default 10)",
    )
    lat.add_argument("--requests", type=int, default=None, help="stop a measurement after N requests")
    lat.add_argument("--warmup", type=int, default=5, help="warm-up requests per client, not measured (default 5)")
    lat.add_argument("--batch-size", type=int, default=32, help="images per request in offline (default 32)")
    lat.add_argument("--rate", type=_positive_float, default=20.0, help="server scenario: requests/s (default 20)")
    lat.add_argument(
        "--server-workers", type=int, default=8, help="server scenario: most requests in flight (default 8)"
    )
    lat.add_argument(
        "--concurrency", type=_int_list, default=[1, 2, 4, 8], help="concurrency sweep levels (default 1,2,4,8)"
    )
    lat.add_argument("--threads", type=int, default=None, help="LiteRT threads for tflite targets without &threads")
    lat.add_argument("--images", default=None, help="sample images (file or folder); default: synthetic 320x240 JPEGs")
    lat.add_argument(
        "--size",
        type=_size,
        default=None,
        help="input size for remote targets (default: from the local targets' manifests, else 180x180)",
    )
    lat.add_argument("--seed", type=int, default=0, help="seed of the server scenario's arrivals")
    lat.add_argument("--out", default=None, help="folder for latency.json and latency.csv")
    lat.add_argument("--plots", action="store_true", help="also write PNG plots into --out")
    lat.add_argument("--quiet", action="store_true", help="no progress bars")
    lat.set_defaults(func=_latency)

    par = targets_parser(
        "parity", "accuracy parity of every format/transport against Keras", "Compare predictions on the same images."
    )
    par.add_argument(
        "--images", default=None, help="folder of class sub-folders (default: the data folder in the models' manifests)"
    )
    par.add_argument(
        "--subset",
        choices=["validation", "all"],
        default="validation",
        help="which images of the folder: the training-time validation split (seed 123) or all",
    )
    par.add_argument("--validation-split", type=float, default=0.2)
    par.add_argument("--seed", type=int, default=123, help="split seed (training's default is 123)")
    par.add_argument("--limit", type=int, default=None, help="use at most N images (spread evenly)")
    par.add_argument("--reference", default=None, help="name of the reference target (default: the Keras one)")
    par.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="SERVED=LOCAL",
        help="compare served target SERVED with in-process target LOCAL (names); repeatable",
    )
    par.add_argument("--batch-size", type=int, default=32)
    par.add_argument("--threads", type=int, default=None)
    par.add_argument("--accuracy-ratio", type=float, default=0.99, help="accuracy >= RATIO x reference (0.99)")
    par.add_argument("--agreement", type=float, default=0.97, help="quantized top-1 agreement bound (0.97)")
    par.add_argument("--float-tolerance", type=float, default=1e-3, help="float conversions: max |dp| (1e-3)")
    par.add_argument("--served-tolerance", type=float, default=0.0, help="served vs in-process: max |dp| (0)")
    par.add_argument("--out", default=None, help="folder for parity.json and parity.csv")
    par.add_argument("--plots", action="store_true", help="also write confusion-matrix PNGs into --out")
    par.set_defaults(func=_parity)


def _check_plots(args: argparse.Namespace) -> None:
    """``--plots`` needs ``--out`` and matplotlib: checked before the run, not after it."""
    if args.plots and not args.out:
        raise UsageError("--plots needs --out FOLDER to write the PNG files into")
    if args.plots:
        from deepclf.bench.plots import require_matplotlib

        require_matplotlib()


def _print_report(report: LatencyReport | ParityReport, args: argparse.Namespace) -> None:
    """The report's table on stdout; with ``--out``, its files (and plots) written there, one line each."""
    print(report.table())
    if args.out:
        for p in report.write(args.out, plots=args.plots):
            print(f"wrote {p}")


def _latency(args: argparse.Namespace) -> int:
    from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
    from deepclf.bench.scenarios import SCENARIOS

    scenarios = args.scenario or ["single-stream"]
    if "all" in scenarios:
        scenarios = list(SCENARIOS)
    _check_plots(args)
    opts = LatencyOptions(
        scenarios=tuple(dict.fromkeys(scenarios)),
        duration=args.duration,
        requests=args.requests,
        warmup=args.warmup,
        batch_size=args.batch_size,
        rate=args.rate,
        server_workers=args.server_workers,
        concurrency=tuple(args.concurrency),
        size=args.size,
        seed=args.seed,
        quiet=args.quiet,
    )
    images = sample_images(args.images)

    def progress(run) -> None:
        if not args.quiet:
            state = "ok" if run.status == "ok" else f"FAILED ({run.error})"
            print(f"[bench] {run.name}: {state}", file=sys.stderr)

    report = run_latency(args.targets, opts, images=images, threads=args.threads, on_target=progress)
    _print_report(report, args)
    return 1 if all(t.status != "ok" for t in report.targets) else 0


def _parity(args: argparse.Namespace) -> int:
    from deepclf.bench.parity import ParityImages, Thresholds, run_parity

    _check_plots(args)
    pairs = {}
    for item in args.pair:
        served, sep, local = item.partition("=")
        if not sep or not served or not local:
            raise UsageError(f"--pair takes SERVED=LOCAL (two target names), got {item!r}")
        pairs[served] = local
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    images = None
    if args.images:
        images = ParityImages.from_folder(
            args.images, subset=args.subset, validation_split=args.validation_split, seed=args.seed, limit=args.limit
        )
    th = Thresholds(
        accuracy_ratio=args.accuracy_ratio,
        quantized_agreement=args.agreement,
        float_tolerance=args.float_tolerance,
        served_tolerance=args.served_tolerance,
    )
    report = run_parity(
        args.targets,
        images,
        thresholds=th,
        reference=args.reference,
        served_ref=pairs,
        batch_size=args.batch_size,
        limit=args.limit,
        threads=args.threads,
    )
    _print_report(report, args)
    return 0 if report.passed else 1
