"""``convert_run``: a training run -> a published TF Serving version folder with every format and a report.

    models/flowers/3/
        saved_model.pb, variables/          SavedModel, signatures serving_default + predict_image_bytes
        assets.extra/tf_serving_warmup_requests
        model.tflite, model_fp16.tflite, model_dynamic.tflite, model_int8.tflite
        manifest.json                       format "savedmodel", variants map (file, size, quantization, parity)
        conversion_report.json              sizes, ratios to fp32, conversion times, parity against Keras

Everything is built in a hidden sibling folder and renamed into place only when every variant passed its checks
(``deepclf.fsutil.publish_dir``), so a server polling ``models/flowers`` never sees half a version, and a failed
conversion publishes nothing::

    result = convert_run("runs/basic-001", "models", name="flowers")
    result.version_dir, result.report["variants"]["int8"]["top1_agreement"]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import ModelFormatError, UsageError, require_tensorflow
from deepclf.fsutil import atomic_write_json, publish_dir
from deepclf.manifest import MANIFEST_NAME, Manifest
from deepclf.preprocessing import preprocess, preprocess_batch, read_bytes
from deepclf.runtime.base import softmax
from deepclf.variants import VARIANT_NAMES, VARIANTS, canonical_variant
from deepclf.versions import MAX_VERSION, next_version

Log = Callable[[str], None]

#: Default minimum top-1 agreement of every variant with Keras on the parity images. Chance level for the five
#: flower classes is 0.2, and the bugs a conversion can have (wrong scale or zero point, lost rescaling, swapped
#: channels, a broken graph) push agreement towards it; honest quantization only flips images whose two best
#: classes are nearly tied (the agreements recorded in docs/results/2026-11-27-training/). 0.9 fails the first
#: kind loudly and never the second, even with 100 parity images (one flip costs 0.01).
DEFAULT_MIN_AGREEMENT = 0.9
DEFAULT_CALIBRATION_STEPS = 100  # TFLite's guidance: ~100-500 representative samples
DEFAULT_PARITY_IMAGES = 100
WARMUP_IMAGES = 3
BYTES_CHECK_IMAGES = 8


@dataclass
class ConvertOptions:
    """Knobs of ``convert_run`` (the CLI flags)."""

    name: str | None = None  # default: the run manifest's name
    version: int | None = None  # default: highest existing version + 1
    force: bool = False
    data_dir: str | Path | None = None  # default: the run config's data_dir
    calibration_steps: int = DEFAULT_CALIBRATION_STEPS
    parity_images: int = DEFAULT_PARITY_IMAGES
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    variants: Sequence[str] = VARIANT_NAMES

    def check(self) -> None:
        if self.version is not None and not 1 <= self.version <= MAX_VERSION:
            raise UsageError(
                f"--version must be a positive integer up to {MAX_VERSION} (TF Serving's int64), got {self.version}"
            )
        if self.calibration_steps < 1:
            raise UsageError(f"--calibration-steps must be at least 1, got {self.calibration_steps}")
        if self.parity_images < 1:
            raise UsageError(f"--parity-images must be at least 1, got {self.parity_images}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise UsageError(f"--min-agreement must be between 0 and 1, got {self.min_agreement}")
        names = [canonical_variant(v) for v in self.variants]
        if None in names or not names:
            raise UsageError(f"--variants must name some of {', '.join(VARIANT_NAMES)}, got {list(self.variants)}")
        self.variants = tuple(dict.fromkeys(n for n in names if n))  # canonical names ("tflite-int8" -> "int8")


@dataclass
class ConvertResult:
    """Where the version went and what the report says."""

    version_dir: Path
    version: int
    report: dict[str, Any] = field(default_factory=dict)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load_run(run_dir: Path) -> tuple[Manifest, dict[str, Any], Path]:
    keras_file = run_dir / "model.keras" if run_dir.is_dir() else run_dir
    if not keras_file.is_file() or keras_file.suffix != ".keras":
        raise UsageError(f"{run_dir} is not a training run (expected a folder holding model.keras)")
    manifest = Manifest.load(keras_file)
    cfg_file = keras_file.parent / "config.json"
    config = json.loads(cfg_file.read_text(encoding="utf-8")) if cfg_file.is_file() else {}
    return manifest, config, keras_file


def _images(
    run_dir: Path, manifest: Manifest, config: dict[str, Any], data_dir: str | Path | None, opts: ConvertOptions
) -> tuple[list[Path], list[Path], list[int] | None]:
    """Calibration files (training subset), parity files (validation subset) and their true labels if known."""
    from deepclf.data.split import split_files

    src = data_dir or config.get("data_dir")
    if src and not data_dir and not Path(src).is_dir() and not Path(src).is_absolute():
        # a relative data_dir in config.json was relative to where training ran; try beside the run too
        for base in (run_dir, run_dir.parent):
            if (base / src).is_dir():
                src = base / src
                break
    if not src or not Path(src).is_dir():
        raise UsageError(
            f"no images to calibrate and check the conversion with: data folder {src!r} "
            + ("(from the run's config.json) " if not data_dir else "")
            + "does not exist; pass --data PATH (a folder of class sub-folders, like the training data)"
        )
    split = float(config.get("validation_split") or 0.2)
    seed = int(config.get("seed", 123))
    train_files, _, classes = split_files(src, "training", validation_split=split, seed=seed)
    val_files, val_labels, _ = split_files(src, "validation", validation_split=split, seed=seed)
    calib = list(train_files)
    random.Random(seed).shuffle(calib)  # noqa: S311 - a seeded sample of every class for int8 calibration, not a secret
    truth = val_labels[: opts.parity_images] if list(classes) == list(manifest.labels) else None
    return calib[: opts.calibration_steps], list(val_files[: opts.parity_images]), truth


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def parity_stats(reference: np.ndarray, probs: np.ndarray, truth: Sequence[int] | None) -> dict[str, Any]:
    """Top-1 agreement and probability differences of ``probs`` against ``reference`` (plus accuracy if
    the true labels are known)."""
    out = {
        "images": len(reference),
        "top1_agreement": float(np.mean(probs.argmax(-1) == reference.argmax(-1))),
        "max_abs_diff": float(np.abs(probs - reference).max()),
        "mean_abs_diff": float(np.abs(probs - reference).mean()),
    }
    if truth is not None:
        out["accuracy"] = float(np.mean(probs.argmax(-1) == np.asarray(truth)))
    return out


def agreement_failures(parity: dict[str, dict[str, Any]], min_agreement: float) -> list[str]:
    """One message per variant whose top-1 agreement with Keras is below ``min_agreement``."""
    return [
        f"{variant} agrees with Keras on {p['top1_agreement']:.1%} of {p['images']} images "
        f"(minimum {min_agreement:.1%})"
        for variant, p in parity.items()
        if p["top1_agreement"] < min_agreement
    ]


def convert_run(
    run_dir: str | Path, models_dir: str | Path, options: ConvertOptions | None = None, *, log: Log = _stderr
) -> ConvertResult:
    """Convert the Keras model of a training run into ``models_dir/<name>/<version>/`` (see module docstring).

    Raises ``UsageError`` for bad options, a missing run or data folder, or an existing version without
    ``force``; ``ModelFormatError`` when an export or a variant fails its checks (nothing is published then).
    """
    opts = options or ConvertOptions()
    opts.check()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    manifest, config, keras_file = _load_run(run_dir)
    name = opts.name or manifest.name
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"--name must be a plain folder name, got {name!r}")
    base = Path(models_dir) / name
    version = opts.version or next_version(base)
    final = base / str(version)
    if final.exists() and not opts.force:
        raise UsageError(f"{final} already exists; refusing to overwrite it (pass --force to replace it)")

    calib_files, parity_files, truth = _images(keras_file.parent, manifest, config, opts.data_dir, opts)
    tf = require_tensorflow("converting a model")
    log(f"loading {keras_file}")
    model = tf.keras.models.load_model(keras_file, compile=False)

    size = manifest.input
    parity_x = preprocess_batch(parity_files, size)
    reference = np.concatenate(
        [softmax(model(tf.constant(parity_x[i : i + 32]), training=False).numpy()) for i in range(0, len(parity_x), 32)]
    )
    bytes_files = parity_files[:BYTES_CHECK_IMAGES]
    image_bytes = [read_bytes(f) for f in bytes_files]

    from deepclf.convert import export, tflite, warmup  # export imports TF-only helpers
    from deepclf.runtime.litert import LiteRTRunner

    out_manifest = manifest.replace(
        name=name,
        format="savedmodel",
        variants={},
        source={**manifest.source, "run_dir": str(run_dir), "keras_file": str(keras_file), "version": version},
    )
    report: dict[str, Any] = {
        "model": name,
        "version": version,
        "run_dir": str(run_dir),
        "input": list(size.shape),
        "labels": list(manifest.labels),
        "parity_images": len(parity_files),
        "calibration_images": len(calib_files),
        "min_agreement": opts.min_agreement,
        "keras": {"file": keras_file.name, "size_bytes": keras_file.stat().st_size},
        "variants": {},
    }
    with publish_dir(final, overwrite=opts.force) as tmp:
        t0 = time.perf_counter()
        export.export_savedmodel(model, out_manifest, tmp)
        sm_seconds = time.perf_counter() - t0
        log(f"exported SavedModel in {sm_seconds:.1f}s; verifying it")
        check = export.verify_savedmodel(
            tmp, out_manifest, parity_x, reference, image_bytes, reference[: len(image_bytes)]
        )
        report["savedmodel"] = {
            "file": "saved_model.pb + variables/",
            "size_bytes": _dir_size(tmp),
            "seconds": sm_seconds,
            "parity": check,
        }
        if truth is not None:  # the SavedModel's classes equal Keras' argmax (checked), so is its accuracy
            check["accuracy"] = parity_stats(reference, reference, truth)["accuracy"]

        def representative() -> Iterator[np.ndarray]:
            for f in calib_files:
                yield preprocess(f, size)

        with tempfile.TemporaryDirectory(prefix="deepclf-tflite-src-") as src:
            export.export_tflite_source(model, out_manifest, src)
            for variant in opts.variants:
                t0 = time.perf_counter()
                content = tflite.convert_variant(src, variant, representative if variant == "int8" else None)
                seconds = time.perf_counter() - t0
                file = VARIANTS[variant].file
                (tmp / file).write_bytes(content)
                runner = LiteRTRunner(tmp / file, manifest=out_manifest)
                probs = np.concatenate([runner.predict(parity_x[i : i + 32]) for i in range(0, len(parity_x), 32)])
                runner.close()
                parity = parity_stats(reference, probs, truth)
                info = {
                    "file": file,
                    "size_bytes": len(content),
                    "seconds": seconds,
                    **VARIANTS[variant].quantization(),
                    "quantization": tflite.quantization_params(content),
                    "parity": parity,
                }
                # the report alone also lists the graph's operators (folded batch normalization, fused activations:
                # docs/convert.md); the manifest travels with the model and needs none of it
                report["variants"][variant] = {**info, "ops": tflite.graph_ops(content)}
                out_manifest.variants[variant] = info
                log(
                    f"converted {variant:<7} in {seconds:5.1f}s: {len(content) / 1e6:6.2f} MB, top-1 agreement "
                    f"{parity['top1_agreement']:.3f}, max |dp| {parity['max_abs_diff']:.2g}"
                )
        failures = agreement_failures({v: e["parity"] for v, e in report["variants"].items()}, opts.min_agreement)
        if failures:
            raise ModelFormatError("conversion rejected, nothing published: " + "; ".join(failures))

        fp32_size = report["variants"].get("fp32", {}).get("size_bytes")
        for entry in [report["keras"], report["savedmodel"], *report["variants"].values()]:
            entry["ratio_to_fp32"] = entry["size_bytes"] / fp32_size if fp32_size else None
        warmup.write_warmup(tmp, name, image_bytes[:WARMUP_IMAGES], parity_x[:1])
        report["warmup_records"] = min(WARMUP_IMAGES, len(image_bytes)) + 1
        report["seconds_total"] = time.perf_counter() - t_start
        out_manifest.save(tmp / MANIFEST_NAME)
        atomic_write_json(tmp / "conversion_report.json", report)
    log(f"published {final}")
    return ConvertResult(final, version, report)


def format_report(report: dict[str, Any]) -> str:
    """The conversion report as a fixed-width table (what ``deepclf convert`` prints)."""
    head = (
        f"{'artifact':<14} {'file':<28} {'size MB':>8} {'x fp32':>7} {'secs':>6} {'top-1 agree':>11} "
        f"{'max |dp|':>9} {'accuracy':>8}"
    )
    rows = [head, "-" * len(head)]

    def fmt(value: Any, spec: str) -> str:
        return "" if value is None else format(value, spec)

    def row(label: str, e: dict[str, Any]) -> str:
        p = e.get("parity", {})
        return (
            f"{label:<14} {e['file']:<28} {e['size_bytes'] / 1e6:8.2f} {fmt(e.get('ratio_to_fp32'), '.2f'):>7} "
            f"{fmt(e.get('seconds'), '.1f'):>6} {fmt(p.get('top1_agreement'), '.3f'):>11} "
            f"{fmt(p.get('max_abs_diff'), '.2g'):>9} {fmt(p.get('accuracy'), '.3f'):>8}"
        )

    rows.append(row("keras", report["keras"]))
    rows.append(row("savedmodel", report["savedmodel"]))
    for variant, e in report["variants"].items():
        rows.append(row(VARIANTS[variant].runner_format if variant in VARIANTS else variant, e))
    rows.append(
        f"parity on {report['parity_images']} validation images against Keras; "
        f"int8 calibrated on {report['calibration_images']} training images; "
        f"total {report.get('seconds_total', 0):.1f}s"
    )
    return "\n".join(rows)
