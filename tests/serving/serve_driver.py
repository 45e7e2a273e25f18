"""Runs ``deepclf serve`` in a child process for the process-level tests, with TensorFlow made unimportable.

    python serve_driver.py [--slow SECONDS] -- <deepclf serve flags>

An import hook makes ``import tensorflow`` (and keras) raise, and records every attempt; at exit the attempts are
printed to stderr as ``blocked imports: [...]``, so a test sees an attempt even if some library swallowed the
ImportError. ``--slow`` wraps every runner so each call sleeps first (to have requests in flight on SIGTERM); it
goes through ``serve_foreground``, the same code path as ``deepclf serve``.
"""

from __future__ import annotations

import importlib.abc
import sys
import time

BLOCKED: list[str] = []


class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        root = name.split(".")[0]
        if root in ("tensorflow", "keras", "tf_keras"):
            BLOCKED.append(name)
            raise ImportError(f"TensorFlow is blocked in this process (tried to import {name!r})")
        return None


class Slow:
    delay = 0.0

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, inputs, signature="serving_default"):
        time.sleep(Slow.delay)
        return self.inner.run(inputs, signature)


def main(argv: list[str]) -> int:
    sys.meta_path.insert(0, BlockTensorFlow())
    slow = None
    if argv[:1] == ["--slow"]:
        slow, argv = float(argv[1]), argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        if slow is None:
            from deepclf.cli import main as cli_main

            return cli_main(["serve", *argv])
        from deepclf.serving.cli import build_serve_args, config_from_args, serve_foreground, setup_logging

        args = build_serve_args(argv)
        config = config_from_args(args)
        config.runner_wrapper = Slow
        Slow.delay = slow
        setup_logging(args.log_level, access_log=not args.no_access_log)
        return serve_foreground(config, grace=args.grace_seconds)
    finally:
        print(f"blocked imports: {BLOCKED}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
