"""``deepclf predict``: classify image files with a local model in any format (TF-free for .tflite).

    deepclf predict models/flowers/3 rose.jpg                 # LiteRT fp32 from a version folder
    deepclf predict models/flowers/3 --variant int8 *.jpg --top-k 3
    deepclf predict runs/basic-001 rose.jpg --json            # the Keras model of a training run

Prints the tutorial's sentence per image ("This image most likely belongs to roses with a 97.12 percent
confidence."), the top k with ``--top-k``, or one JSON document with ``--json``.

``build_predictor`` is the one place that decides *what* classifies the images: today a local runner; a remote
backend (``--server grpc://host:8500 --model NAME``) plugs in there by adding its flags in ``add_arguments`` and
returning any object with ``classify(images, top_k)`` and ``close()``.

This module sits above both ``deepclf.runtime`` (local runners) and ``deepclf.clients`` (remote servers), which
is why it is not in either: neither package imports the other for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from deepclf.errors import UsageError
from deepclf.runtime.base import Classification
from deepclf.runtime.loader import FORMAT_CHOICES
from deepclf.variants import VARIANT_NAMES, variant_arg


class Predictor(Protocol):
    """What ``deepclf predict`` needs from a backend (every ``Runner`` is one)."""

    def classify(self, images: Sequence[str], top_k: int = 5) -> list[Classification]: ...

    def close(self) -> None: ...


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``deepclf predict``."""
    p = subparsers.add_parser(
        "predict",
        help="classify images with a local model (Keras run, SavedModel, .tflite or version folder)",
        description=__doc__.split("\n\n")[0],
    )
    add_arguments(p)
    p.set_defaults(func=run_predict)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``deepclf predict`` (a remote backend adds its own here)."""
    p.add_argument(
        "model",
        metavar="RUN_OR_MODEL",
        help="run folder, .keras or .tflite file, SavedModel folder, models/<name>[/<version>] folder",
    )
    p.add_argument("images", metavar="IMAGE", nargs="*", help="image files (JPEG, PNG, BMP, GIF)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of sentences")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="also show the K best labels per image")
    p.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        default=None,
        help="model format (default: from the path; a version folder means LiteRT)",
    )
    p.add_argument(
        "--variant",
        type=variant_arg,
        choices=VARIANT_NAMES,
        default=None,
        help="TFLite variant of a version folder (default fp32)",
    )
    p.add_argument("--threads", type=int, default=None, metavar="N", help="LiteRT/XNNPACK threads")
    # Remote backend (deepclf.clients): with --server, every positional argument is an image.
    p.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help="classify on a server instead: grpc://host:8500 or http://host:8501 (TF Serving or edge)",
    )
    p.add_argument("--model", dest="model_name", default=None, metavar="NAME", help="model name on the --server")
    _parse_intermixed(p)


def _parse_intermixed(p: argparse.ArgumentParser) -> None:
    """Let options sit between positionals although IMAGE takes zero or more (with ``--server`` the first
    positional is an image too): plain argparse would end IMAGE at the first option; its intermixed parsing
    does not. The subcommand dispatcher calls ``parse_known_args``, so that is what is redirected."""
    plain = p.parse_known_args

    def parse_known_args(args=None, namespace=None):
        p.parse_known_args = plain  # type: ignore[method-assign]  # intermixed parsing calls it twice inside
        try:
            return p.parse_known_intermixed_args(args, namespace)
        finally:
            p.parse_known_args = parse_known_args  # type: ignore[method-assign]

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]


def build_predictor(args: argparse.Namespace) -> Predictor:
    """The backend that classifies the images: a local runner loaded from ``args.model``, or ``--server``."""
    if getattr(args, "server", None):
        from deepclf.clients import RemotePredictor, connect

        if args.format or args.variant or args.threads is not None:
            raise UsageError("--format, --variant and --threads are for local models; the server chose its own")
        if not args.model_name:
            raise UsageError(f"--server {args.server} needs --model NAME (the model's name on that server)")
        return RemotePredictor(connect(args.server), model=args.model_name)
    if getattr(args, "model_name", None):
        raise UsageError("--model names a model on a --server; give --server URL too")
    from deepclf.runtime.loader import load_runner  # keep `deepclf --help` light

    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    return load_runner(args.model, format=args.format, variant=args.variant, num_threads=args.threads)


def sentence(c: Classification) -> str:
    """The tutorial's sentence for one result."""
    return f"This image most likely belongs to {c.label} with a {100 * c.score:.2f} percent confidence."


def format_results(files: Sequence[str], results: Sequence[Classification], *, as_json: bool, top_k: int | None) -> str:
    """The text ``deepclf predict`` prints for ``results`` (one per file)."""
    if as_json:
        doc = [
            {
                "file": f,
                "label": c.label,
                "index": c.index,
                "score": c.score,
                "top_k": [{"label": lab, "index": i, "score": s} for lab, i, s in c.top_k],
            }
            for f, c in zip(files, results, strict=True)
        ]
        return json.dumps(doc, indent=2)
    lines = []
    for f, c in zip(files, results, strict=True):
        lines.append(f"{f}: {sentence(c)}" if len(files) > 1 else sentence(c))
        if top_k:
            width = max(len(lab) for lab, _, _ in c.top_k)
            lines += [f"  {rank}. {lab:<{width}}  {100 * s:6.2f}%" for rank, (lab, _, s) in enumerate(c.top_k, 1)]
    return "\n".join(lines)


def run_predict(args: argparse.Namespace) -> int:
    """Handler of ``deepclf predict``."""
    if getattr(args, "server", None):
        args.images, args.model = [args.model, *args.images], None  # no local model: the first one is an image
    elif not args.images:
        raise UsageError("give at least one IMAGE after the model")
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    for img in args.images:
        if not Path(img).is_file():
            raise UsageError(f"image file not found: {img}")
    predictor = build_predictor(args)
    try:
        results = predictor.classify(list(args.images), top_k=args.top_k or 5)
    finally:
        predictor.close()
    print(format_results(args.images, results, as_json=args.json, top_k=args.top_k), file=sys.stdout)
    return 0
