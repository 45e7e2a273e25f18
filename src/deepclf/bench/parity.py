"""``deepclf bench parity``: the same images through every format and transport, compared with Keras.

Every target classifies the same images (preprocessed once with ``deepclf.preprocessing``; targets that send
bytes get the original files). Per target the report gives top-1 accuracy and its difference from the reference,
top-1 agreement with the reference, the max and mean absolute probability difference, a confusion matrix, and a
verdict against thresholds that depend on what the target is (``Target.kind``):

``reference``  the in-process Keras model (the FP32 original); everything is compared with it.
``float``      SavedModel, TFLite fp32: the same float32 math in another order. Max |dp| <= 1e-3 and accuracy
               >= 99% of the reference.
``quantized``  TFLite fp16/dynamic/int8. MLPerf's bar, accuracy >= 0.99 x FP32 accuracy, plus top-1 agreement
               >= 0.97: quantization noise (int8 probabilities come in 1/256 steps) may flip images whose two best
               classes are within a step of each other, which on a 5-class CNN is a few percent of images at
               most; more than 3 in 100 flipped decisions means the calibration went wrong even if the flips
               happen to cancel out in accuracy.
``served``     a remote endpoint. Its probabilities must equal **exactly** (tolerance 0) those of the in-process
               target running the same model file: the server runs the same runner on the same tensor, and JSON
               floats / protobuf carry float32 exactly. The pair is given with ``served_ref``, else it is the
               in-process target closest to it (the report says which).

A target that cannot be loaded or whose requests fail is reported as failed, never fatal::

    report = run_parity(["keras:runs/basic", "tflite:models/flowers/1?variant=int8", "grpc://127.0.0.1:8500/flowers"],
                        images="flower_photos")     # a folder: its validation split (seed 123), like training
    print(report.table()); report.write("results/")
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.bench.env import describe, environment
from deepclf.bench.report import format_table, write_report
from deepclf.bench.specs import parse_targets
from deepclf.bench.targets import Batch, Target
from deepclf.errors import UsageError
from deepclf.manifest import Manifest
from deepclf.preprocessing import preprocess, read_bytes


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail bounds (see the module docstring for why these values)."""

    accuracy_ratio: float = 0.99  # MLPerf: >= 99% of the FP32 (reference) accuracy
    quantized_agreement: float = 0.97
    float_tolerance: float = 1e-3  # max |probability difference| for float conversions
    served_tolerance: float = 0.0  # served endpoints vs in-process, same model file: exact


@dataclass
class ParityImages:
    """The evaluation set: file paths, label indices, class names, and where it came from."""

    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]
    source: str

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike[str],
        *,
        subset: str = "validation",
        validation_split: float = 0.2,
        seed: int = 123,
        limit: int | None = None,
    ) -> ParityImages:
        """A folder of class sub-folders; ``subset`` as in training (``all`` for every image).

        ``limit`` keeps an evenly spread, class-balanced-as-it-falls subset of that many images.
        """
        from deepclf.data.split import split_files  # TF-free, but only parity needs it

        paths, labels, classes = split_files(folder, subset, validation_split=validation_split, seed=seed)
        if limit is not None and limit < len(paths):
            keep = np.linspace(0, len(paths) - 1, max(1, limit)).round().astype(int)
            paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        return cls(
            list(map(Path, paths)),
            np.asarray(labels, dtype=np.int64),
            list(classes),
            f"{folder} ({subset}, {len(paths)} images)",
        )


@dataclass
class TargetParity:
    """One target's parity numbers (``status`` ok/failed; ``passed`` None for the reference or a failure)."""

    name: str
    spec: str
    kind: str
    info: dict[str, Any]
    status: str = "ok"
    error: str | None = None
    images: int = 0
    seconds: float | None = None
    accuracy: float | None = None
    accuracy_delta: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    compared_with: str | None = None
    passed: bool | None = None
    checks: list[str] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    predictions: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ParityReport:
    """Every target's ``TargetParity`` plus the environment, thresholds and the images used."""

    environment: dict[str, Any]
    thresholds: Thresholds
    images: dict[str, Any]
    reference: str | None
    targets: list[TargetParity]

    @property
    def passed(self) -> bool:
        """True when every target ran and none failed its checks."""
        return all(t.status == "ok" and t.passed is not False for t in self.targets)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for t in self.targets:
            verdict = (
                "FAILED" if t.status != "ok" else ("ref" if t.passed is None else ("pass" if t.passed else "FAIL"))
            )
            out.append(
                {
                    "target": t.name,
                    "kind": t.kind,
                    "status": t.status,
                    "images": t.images,
                    "accuracy": t.accuracy,
                    "accuracy_delta": t.accuracy_delta,
                    "agreement": t.agreement,
                    "max_abs_diff": t.max_abs_diff,
                    "mean_abs_diff": t.mean_abs_diff,
                    "compared_with": t.compared_with,
                    "verdict": verdict,
                    "model_bytes": t.info.get("model_bytes"),
                    "variant": t.info.get("variant"),
                    "format": t.info.get("format"),
                    "transport": t.info.get("transport"),
                    "seconds": t.seconds,
                    "error": t.error,
                    "spec": t.spec,
                }
            )
        return out

    def table(self) -> str:
        cols = [
            ("target", "target"),
            ("kind", "kind"),
            ("n", "images"),
            ("top-1", "accuracy"),
            ("d top-1", "accuracy_delta"),
            ("agree", "agreement"),
            ("max |dp|", "max_abs_diff"),
            ("mean |dp|", "mean_abs_diff"),
            ("vs", "compared_with"),
            ("verdict", "verdict"),
        ]
        rows = self.rows()
        for r in rows:  # probability differences read better in scientific notation
            for k in ("max_abs_diff", "mean_abs_diff"):
                if isinstance(r[k], float):
                    r[k] = "0" if r[k] == 0 else f"{r[k]:.1e}"
        lines = [
            f"environment: {describe(self.environment)}",
            f"images: {self.images.get('source')}",
            f"reference: {self.reference or '(none loaded)'}",
            "",
            format_table(rows, cols, digits=4),
            "",
        ]
        for t in self.targets:
            if t.status != "ok":
                lines.append(f"  {t.name}: FAILED - {t.error}")
            elif t.passed is False:
                lines.append(f"  {t.name}: " + "; ".join(c for c in t.checks if c.startswith("FAIL")))
        lines.append("overall: " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "deepclf.bench.parity/1",
            "environment": self.environment,
            "thresholds": asdict(self.thresholds),
            "images": self.images,
            "reference": self.reference,
            "passed": self.passed,
            "targets": [t.to_dict() for t in self.targets],
        }

    def write(self, out_dir: str | os.PathLike[str], *, plots: bool = False, prefix: str = "parity") -> list[Path]:
        """``<prefix>.json`` (with confusion matrices and predictions) and ``<prefix>.csv`` (+ PNG plots)."""
        paths = write_report(out_dir, prefix, self.to_dict(), self.rows())
        if plots:
            from deepclf.bench import plots as _plots  # matplotlib only when asked

            paths += _plots.parity_plots(self, out_dir, prefix=prefix)
        return paths


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def default_images_for(targets: Sequence[Target]) -> str | None:
    """The data folder recorded in the first loadable local target's manifest (``source.data_dir``)."""
    for t in targets:
        path = getattr(t, "path", None)
        if path is None:
            continue
        try:
            src = Manifest.load(path).source
        except Exception:  # noqa: BLE001, S112 - an unreadable manifest is not an error here: try the next target
            continue
        if src.get("data_dir") and Path(src["data_dir"]).is_dir():
            return str(src["data_dir"])
    return None


def _label_map(class_names: list[str], labels: list[str] | None) -> np.ndarray | None:
    """Index of each folder class in the model's label order (None when they are the same order)."""
    if labels is None or list(labels) == list(class_names):
        return None
    missing = [c for c in class_names if c not in labels]
    if missing:
        raise UsageError(f"image classes {missing} are not among the model's labels {labels}")
    return np.asarray([labels.index(c) for c in class_names], dtype=np.int64)


def _predict_all(
    target: Target, data: ParityImages, tensors: np.ndarray, encoded: list[bytes], batch_size: int
) -> np.ndarray:
    out = []
    for s in range(0, len(data.paths), batch_size):
        batch = Batch(tensors[s : s + batch_size], tuple(encoded[s : s + batch_size]) if target.send == "bytes" else ())
        out.append(np.asarray(target.predict(batch), dtype=np.float32))
    return np.concatenate(out)


def run_parity(
    targets: Sequence[str | Target],
    images: ParityImages | str | os.PathLike[str] | None = None,
    *,
    thresholds: Thresholds | None = None,
    reference: str | None = None,
    served_ref: dict[str, str] | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    threads: int | None = None,
    on_target: Callable[[TargetParity], None] | None = None,
) -> ParityReport:
    """Classify ``images`` with every target and compare them (see the module docstring).

    ``images``: a ``ParityImages``, a folder (its validation split), or None for the data folder recorded in the
    models' manifests. ``reference``: the name of the reference target (default: the first ``keras`` one, else the
    first that loads). ``served_ref``: ``{served target name: in-process target name}`` pairs.
    """
    th = thresholds or Thresholds()
    parsed = parse_targets(targets, threads=threads)
    if images is None:
        folder = default_images_for(parsed)
        if folder is None:
            raise UsageError(
                "no images to compare on: pass a folder of class sub-folders (--images), or use models whose "
                "manifest records the training data folder (source.data_dir)"
            )
        images = folder
    data = images if isinstance(images, ParityImages) else ParityImages.from_folder(images, limit=limit)
    if not data.paths:
        raise UsageError(f"no images found in {data.source}")

    # Load every target first: the tensor size comes from the models, and failures are known before we start.
    results: list[TargetParity] = []
    opened: list[tuple[Target, TargetParity]] = []
    for t in parsed:
        tp = TargetParity(t.name, t.spec, t.kind, t.info())
        try:
            t.open()
            tp.info = t.info()
            opened.append((t, tp))
        except Exception as exc:  # noqa: BLE001 - a failing target is reported, not fatal
            tp.status, tp.error = "failed", f"cannot open: {type(exc).__name__}: {exc}"
        results.append(tp)

    size = next((t.input_size for t, _ in opened if t.input_size), None) or (180, 180)
    encoded = [read_bytes(p) for p in data.paths]
    tensors = np.stack([preprocess(b, size, name=str(p)) for b, p in zip(encoded, data.paths, strict=True)])
    probs: dict[str, np.ndarray] = {}
    try:
        for t, tp in opened:
            t0 = time.perf_counter()
            try:
                if t.input_size and tuple(t.input_size) != tuple(size):
                    x = np.stack([preprocess(b, t.input_size) for b in encoded])
                else:
                    x = tensors
                p = _predict_all(t, data, x, encoded, batch_size)
                mapping = _label_map(data.class_names, t.labels)
                if mapping is not None:
                    p = p[:, mapping]  # columns in folder-class order, so every target is compared alike
                probs[t.name] = p
                tp.images = int(p.shape[0])
                tp.seconds = time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                tp.status, tp.error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
    finally:
        for t, _ in opened:
            t.close()

    ok = [tp for tp in results if tp.status == "ok" and tp.name in probs]
    ref_name = reference
    if ref_name is None:
        ref_name = next((tp.name for tp in ok if tp.kind == "reference"), ok[0].name if ok else None)
    elif ref_name not in probs:
        fail = next((tp for tp in results if tp.name == ref_name), None)
        if fail is None:
            raise UsageError(f"reference {ref_name!r} is not one of the targets {[t.name for t in parsed]}")
        ref_name = None  # it failed; every comparison is then impossible, and the report says so

    y = data.labels
    nclass = len(data.class_names)
    ref_probs = probs.get(ref_name) if ref_name else None
    ref_acc = float(np.mean(np.argmax(ref_probs, 1) == y)) if ref_probs is not None else None
    local = {tp.name for tp in ok if tp.kind != "served"}
    for tp in ok:
        p = probs[tp.name]
        pred = np.argmax(p, axis=1)
        tp.accuracy = float(np.mean(pred == y))
        tp.confusion = confusion_matrix(y, pred, nclass).tolist()
        tp.predictions = pred.tolist()
        if ref_probs is None:
            tp.checks.append("no reference loaded: nothing to compare with")
            continue
        tp.accuracy_delta = tp.accuracy - float(ref_acc)  # type: ignore[arg-type]
        tp.agreement = float(np.mean(pred == np.argmax(ref_probs, 1)))
        diff = np.abs(p.astype(np.float64) - ref_probs.astype(np.float64))
        tp.max_abs_diff, tp.mean_abs_diff, tp.compared_with = float(diff.max()), float(diff.mean()), ref_name
        if tp.name == ref_name:
            tp.checks.append("reference")
            continue
        _verdict(tp, p, probs, local, ref_acc, th, (served_ref or {}).get(tp.name))

    imgs = {
        "source": data.source,
        "count": len(data.paths),
        "class_names": data.class_names,
        "files": [str(p) for p in data.paths],
    }
    return ParityReport(environment(), th, imgs, ref_name, results)


def _verdict(
    tp: TargetParity,
    p: np.ndarray,
    probs: dict[str, np.ndarray],
    local: set[str],
    ref_acc: float | None,
    th: Thresholds,
    pair: str | None,
) -> None:
    checks: list[tuple[bool, str]] = []
    bar = th.accuracy_ratio * float(ref_acc or 0.0)
    if tp.kind == "served":
        candidates = [pair] if pair else sorted(local)
        candidates = [c for c in candidates if c in probs and c != tp.name]
        if not candidates:
            checks.append((False, "no in-process target of the same model to compare a served endpoint with"))
        else:
            best = min(candidates, key=lambda c: float(np.max(np.abs(probs[c].astype(np.float64) - p))))
            d = float(np.max(np.abs(probs[best].astype(np.float64) - p)))
            # served endpoints are compared with their in-process twin, not with Keras
            tp.compared_with, tp.max_abs_diff = best, d
            tp.mean_abs_diff = float(np.mean(np.abs(probs[best].astype(np.float64) - p)))
            tp.agreement = float(np.mean(np.argmax(p, 1) == np.argmax(probs[best], 1)))
            checks.append(
                (
                    d <= th.served_tolerance,
                    f"max |dp| vs {best} = {d:.3g} (must be <= {th.served_tolerance:g}: same model file)",
                )
            )
    elif tp.kind == "float":
        checks.append(
            (
                tp.max_abs_diff is not None and tp.max_abs_diff <= th.float_tolerance,
                f"max |dp| = {tp.max_abs_diff:.3g} (float conversion: must be <= {th.float_tolerance:g})",
            )
        )
        checks.append(
            (
                tp.accuracy is not None and tp.accuracy >= bar - 1e-12,
                f"accuracy {tp.accuracy:.4f} (must be >= {th.accuracy_ratio:g} x {ref_acc:.4f} = {bar:.4f})",
            )
        )
    else:  # quantized, or anything else: MLPerf's accuracy bar plus the agreement bound
        checks.append(
            (
                tp.accuracy is not None and tp.accuracy >= bar - 1e-12,
                f"accuracy {tp.accuracy:.4f} (must be >= {th.accuracy_ratio:g} x {ref_acc:.4f} = {bar:.4f})",
            )
        )
        checks.append(
            (
                tp.agreement is not None and tp.agreement >= th.quantized_agreement,
                f"top-1 agreement {tp.agreement:.4f} (must be >= {th.quantized_agreement:g})",
            )
        )
    tp.passed = all(ok for ok, _ in checks)
    tp.checks = [("ok: " if ok else "FAIL: ") + msg for ok, msg in checks]
