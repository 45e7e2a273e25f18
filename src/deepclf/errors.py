"""Errors every command can raise to the user.

``DeepclfError`` is the root of everything the package raises on purpose; the CLI prints its message on one line
(``error: ...``) and exits with status 2, never with a traceback. Messages say what was wrong and what was
expected, echoing the bad value::

    raise UsageError(f"--img-size must be a positive integer, got {value!r}")
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class DeepclfError(Exception):
    """Base class for every error the package raises on purpose (shown to users without a traceback)."""


class UsageError(DeepclfError):
    """A command-line flag, file or argument was not what the command expects."""


class DatasetError(DeepclfError):
    """The dataset could not be found, downloaded, verified or read."""


class ModelFormatError(DeepclfError):
    """A model file or folder is missing, unreadable, or not the kind the caller asked for."""


class ImageError(DeepclfError):
    """An image could not be decoded or is not usable (empty, truncated, unknown format)."""


class MissingDependencyError(DeepclfError):
    """An optional dependency (an extra) is needed for this operation but is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed; "
            f"install it with: pip install 'deep-image-classification[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require_tensorflow(purpose: str):  # -> module
    """Import TensorFlow or raise a clear ``MissingDependencyError`` naming the ``tf`` extra.

    The first import is made quiet: TensorFlow's C++ start-up lines (oneDNN notices, CUDA probes on machines
    without a GPU) bypass ``TF_CPP_MIN_LOG_LEVEL`` because they are printed before logging is set up, so they
    are captured at the file-descriptor level and only lines that are not informational are passed on.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        with _quiet_native_stderr():
            import tensorflow as tf  # deliberately lazy: the edge paths must never import TF

            tf.config.list_physical_devices()  # device discovery (the CUDA probe) happens here, quietly
    except ImportError as exc:  # pragma: no cover - exercised in the edge-only subprocess tests
        raise MissingDependencyError("tensorflow", "tf", purpose) from exc
    return tf


_NOISE = ("I0000", "W0000", "WARNING: All log messages before absl::InitializeLog()")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Capture fd 2 around TensorFlow's first import; replay everything but its informational start-up lines.

    Also drops the "failed call to cuInit" error CUDA builds print on machines without a GPU. Set
    ``DEEPCLF_TF_LOGS=1`` to see everything.
    """
    if os.environ.get("DEEPCLF_TF_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode("utf-8", "replace").splitlines()
            kept = [ln for ln in lines if ln and not ln.startswith(_NOISE) and "failed call to cuInit" not in ln]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


class InvalidInputError(DeepclfError):
    """Inputs do not match what a model's signature takes (names, dtypes, shapes, values, image bytes).

    Runners raise it; ``deepclf.protocol.errors`` maps it to INVALID_ARGUMENT / HTTP 400.
    """


class NotFoundError(DeepclfError):
    """A model, version, version label or signature that was asked for does not exist (NOT_FOUND / HTTP 404)."""
