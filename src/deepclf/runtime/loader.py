"""``load_runner``: one call from a path to the right runner, importing TensorFlow only when the format needs it.

What a path means::

    load_runner("runs/basic-001")                  # run folder (model.keras)          -> KerasRunner
    load_runner("runs/basic-001/model.keras")      # .keras file                       -> KerasRunner
    load_runner("models/flowers/3")                # version folder with .tflite files -> LiteRTRunner, fp32
    load_runner("models/flowers/3", variant="int8")                                     # -> model_int8.tflite
    load_runner("models/flowers/3", format="savedmodel")                                # -> SavedModelRunner
    load_runner("models/flowers/3/model_fp16.tflite")                                   # -> LiteRTRunner, fp16
    load_runner("models/flowers")                  # model base folder                 -> its highest version
    load_runner("export/sm")                       # SavedModel folder, no .tflite     -> SavedModelRunner

A version folder defaults to LiteRT because that is the TF-free, edge-deployable path; ``format="savedmodel"``
asks for the TensorFlow graph instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from deepclf.errors import ModelFormatError, UsageError
from deepclf.manifest import MANIFEST_NAME, Manifest
from deepclf.runtime.base import FORMATS, Runner
from deepclf.variants import DEFAULT_VARIANT, RUNNER_FORMAT_PREFIX, TFLITE_FILES, VARIANT_NAMES, parse_variant
from deepclf.versions import expected_layout, latest_version

#: Accepted ``format`` values: the runner formats plus plain "tflite" (variant from ``variant``, default fp32).
FORMAT_CHOICES = (*FORMATS, "tflite")


def _split_format(format: str | None, variant: str | None) -> tuple[str | None, str | None]:
    """(format, canonical variant): ``format="tflite-int8"`` is ``("tflite", "int8")``, as is ``variant="int8"``."""
    if format is not None and format not in FORMAT_CHOICES:
        raise UsageError(f"unknown model format {format!r}; expected one of {', '.join(FORMAT_CHOICES)}")
    var = parse_variant(variant) if variant else None  # "int8", or the runner-format spelling "tflite-int8"
    if format and format.startswith(RUNNER_FORMAT_PREFIX):
        fmt_variant = parse_variant(format)
        if var and var != fmt_variant:
            raise UsageError(f"format {format!r} contradicts variant {variant!r}; give one or make them agree")
        return "tflite", fmt_variant
    if var and format in ("keras", "savedmodel"):
        raise UsageError(f"a TFLite variant ({variant!r}) cannot be used with format {format!r}")
    return format, var


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """A model base folder (``models/flowers``) -> its highest version folder; any other path unchanged.

    Version folders follow ``deepclf.versions`` (ASCII digits, int64; other names are ignored, never fatal).
    """
    p = Path(path)
    if p.is_dir() and not _looks_like_model(p):
        latest = latest_version(p)
        if latest is not None:
            return latest[1]
    return p


def _looks_like_model(d: Path) -> bool:
    return (
        (d / "model.keras").is_file()
        or (d / "saved_model.pb").is_file()
        or any((d / f).is_file() for f in TFLITE_FILES.values())
    )


def load_runner(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    variant: str | None = None,
    num_threads: int | None = None,
) -> Runner:
    """Load the model at ``path`` into the runner its format needs (see the module docstring for the rules).

    ``format``: keras, savedmodel, tflite, tflite-fp32/-fp16/-dynamic/-int8 (default: from the path).
    ``variant``: fp32 (default), fp16, dynamic, int8 for TFLite (``deepclf.variants``; ``tflite-int8`` is accepted
    too). ``num_threads``: LiteRT/XNNPACK threads.
    Raises ``ModelFormatError`` when the path holds no model of the asked kind, ``UsageError`` for bad options.
    """
    fmt, var = _split_format(format, variant)
    p = Path(path)
    if not p.exists():
        raise ModelFormatError(
            f"model path not found: {p} (expected a run folder, a .keras or .tflite file, "
            "a SavedModel folder or a models/<name>[/<version>] folder)"
        )
    if p.is_file() and p.name in ("saved_model.pb", MANIFEST_NAME):
        p = p.parent
    p = resolve_model_path(p)

    if p.is_file():
        if p.suffix == ".tflite":
            if fmt not in (None, "tflite"):
                raise UsageError(f"{p} is a TFLite file; it cannot be loaded as format {format!r}")
            if var is not None and var != _file_variant(p):
                raise UsageError(
                    f"{p} is the {_file_variant(p)} variant; asked for {var!r} (pass the version "
                    "folder to pick a variant by name)"
                )
            return _litert(p, num_threads)
        if p.suffix == ".keras":
            if fmt not in (None, "keras"):
                raise UsageError(f"{p} is a Keras file; it cannot be loaded as format {format!r}")
            return _keras(p)
        raise ModelFormatError(f"{p}: not a model file (expected a .tflite or .keras file)")

    has_keras = (p / "model.keras").is_file()
    has_saved = (p / "saved_model.pb").is_file()
    if fmt == "keras" or (fmt is None and var is None and has_keras):
        if not has_keras:
            raise ModelFormatError(f"{p} holds no model.keras (format 'keras' needs a training run folder)")
        return _keras(p)
    if fmt == "savedmodel" or (fmt is None and var is None and has_saved and not _tflite_files(p)):
        if not has_saved:
            raise ModelFormatError(f"{p} holds no saved_model.pb (format 'savedmodel' needs a SavedModel folder)")
        from deepclf.runtime.tf_runners import SavedModelRunner  # imports TF lazily

        return SavedModelRunner(p)
    # LiteRT from a version folder: pick the variant's file by name (the manifest may rename it).
    files = _tflite_files(p)
    if not files and not has_saved:
        raise ModelFormatError(
            f"{p} holds no model (no model.keras, saved_model.pb or .tflite file, and no version folders; for a "
            f"models/<name> folder, {expected_layout(p)})"
        )
    manifest = Manifest.load(p)
    want = var or DEFAULT_VARIANT
    file = p / manifest.variant_file(want)
    if not file.is_file():
        have = ", ".join(v for v in VARIANT_NAMES if (p / manifest.variant_file(v)).is_file()) or "none"
        raise ModelFormatError(f"{p} has no {want} TFLite variant ({file.name}); variants present: {have}")
    return _litert(file, num_threads, manifest)


def _tflite_files(d: Path) -> list[Path]:
    return sorted(d.glob("*.tflite"))


def _file_variant(p: Path) -> str:
    from deepclf.runtime.litert import variant_of

    try:
        manifest: Manifest | None = Manifest.load(p)
    except ModelFormatError:
        manifest = None
    return variant_of(p, manifest)


def _litert(p: Path, num_threads: int | None, manifest: Manifest | None = None) -> Runner:
    from deepclf.runtime.litert import LiteRTRunner

    return LiteRTRunner(p, manifest=manifest, num_threads=num_threads)


def _keras(p: Path) -> Runner:
    from deepclf.runtime.tf_runners import KerasRunner  # imports TF lazily

    return KerasRunner(p)
