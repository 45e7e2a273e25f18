"""Errors every command can raise to the user.

``DeepclfError`` is the root of everything the package raises on purpose; the CLI prints its message on one line
(``error: ...``) and exits with status 2, never with a traceback. Messages say what was wrong and what was
expected, echoing the bad value::

    raise UsageError(f"--img-size must be a positive integer, got {value!r}")
"""

from __future__ import annotations


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
    """Import TensorFlow or raise a clear ``MissingDependencyError`` naming the ``tf`` extra."""
    try:
        import tensorflow as tf  # noqa: PLC0415 - deliberately lazy: the edge paths must never import TF
    except ImportError as exc:  # pragma: no cover - exercised in the edge-only subprocess tests
        raise MissingDependencyError("tensorflow", "tf", purpose) from exc
    return tf


class InvalidInputError(DeepclfError):
    """Inputs do not match what a model's signature takes (names, dtypes, shapes, values, image bytes).

    Runners raise it; ``deepclf.protocol.errors`` maps it to INVALID_ARGUMENT / HTTP 400.
    """


class NotFoundError(DeepclfError):
    """A model, version, version label or signature that was asked for does not exist (NOT_FOUND / HTTP 404)."""
