"""The one ``deepclf`` command. Each package registers its own subcommands; this module only wires them up.

A package's ``cli`` module exposes ``register(subparsers)``, which adds its subcommands with
``parser.set_defaults(func=handler)``; a handler takes the parsed ``argparse.Namespace`` and returns an exit code.
Registration must stay TF-free (import TensorFlow inside handlers), so ``deepclf predict model.tflite`` and
``deepclf serve`` work with only the ``edge`` extra installed.

Errors the package raises on purpose (``DeepclfError``) are printed as one ``error: ...`` line with exit status 2;
anything else is a bug and keeps its traceback (set ``DEEPCLF_DEBUG=1`` to see tracebacks for all errors).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from deepclf import __version__
from deepclf.errors import DeepclfError

#: Modules that add subcommands, in the order they appear in ``deepclf --help``.
COMMAND_MODULES = (
    "deepclf.demo",
    "deepclf.data.cli",
    "deepclf.train.cli",
    "deepclf.predict",
    "deepclf.convert.cli",
    "deepclf.serving.cli",
    "deepclf.deploy.tfserving.cli",
    "deepclf.deploy.cli",
    "deepclf.bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="deepclf",
        description="Train, convert, serve, call and benchmark image classifiers (TF flowers CNNs to the edge).",
    )
    parser.add_argument("--version", action="version", version=f"deepclf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
                continue  # that package is not part of this build yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepclf`` console script."""
    # TensorFlow's C++ start-up chatter (oneDNN, CUDA probes) is noise for a CLI user; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DeepclfError as exc:
        if os.environ.get("DEEPCLF_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
