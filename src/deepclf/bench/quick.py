"""``quick_report``: a short (~20-30 s) latency + parity report on converted models, for ``make demo``.

Give it model folders (a training run, a ``models/<name>`` base folder or one version folder) or files; it finds
every format there (Keras, SavedModel when TensorFlow is installed, each TFLite variant), adds a server if one is
given, runs one second of single-stream latency per target and a parity check on up to 100 validation images::

    from deepclf.bench import quick_report
    print(quick_report("runs/basic", "models/flowers", server_url="http://127.0.0.1:8501"))
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
from deepclf.bench.parity import ParityImages, default_images_for, run_parity
from deepclf.bench.report import format_table, human_bytes
from deepclf.bench.targets import Target, parse_targets
from deepclf.errors import DeepclfError, UsageError
from deepclf.manifest import TFLITE_FILES, Manifest


def discover_targets(paths: Sequence[str | os.PathLike[str]], *, threads: int | None = None) -> list[str]:
    """Target specs for every model found under ``paths`` (Keras first, so it becomes the parity reference)."""
    from deepclf.runtime import resolve_model_path  # noqa: PLC0415 - TF-free

    keras, others = [], []
    has_tf = importlib.util.find_spec("tensorflow") is not None
    th = f"&threads={threads}" if threads else ""
    for raw in paths:
        p = resolve_model_path(Path(raw))
        if p.is_file():
            if p.suffix == ".keras":
                keras.append(f"keras:{p}")
            elif p.suffix == ".tflite":
                others.append(f"tflite:{p}" + (f"?threads={threads}" if threads else ""))
            continue
        if not p.is_dir():
            raise UsageError(f"no such model file or folder: {p}")
        found = False
        if (p / "model.keras").is_file():
            keras.append(f"keras:{p}")
            found = True
        if (p / "saved_model.pb").is_file() and has_tf:
            others.append(f"savedmodel:{p}")
            found = True
        try:
            manifest = Manifest.load(p)
        except DeepclfError:
            manifest = None
        for variant in TFLITE_FILES:
            fname = manifest.variant_file(variant) if manifest else TFLITE_FILES[variant]
            if (p / fname).is_file():
                others.append(f"tflite:{p}?variant={variant}{th}")
                found = True
        if not found:
            raise UsageError(f"{p} holds no model (model.keras, saved_model.pb or .tflite variants)")
    return keras + others


def _server_specs(server_url: str | Sequence[str] | None, model: str) -> list[str]:
    if not server_url:
        return []
    urls = [server_url] if isinstance(server_url, str) else list(server_url)
    out = []
    for u in urls:
        u = u.rstrip("/")
        if u.startswith(("http://", "https://")):
            out.append(f"rest://{u.split('://', 1)[1]}/{model}")
        elif u.startswith(("rest://", "grpc://")) and u.count("/") == 2:
            out.append(f"{u}/{model}")  # a server without a model name: use the models' name
        else:
            out.append(u)
    return out


def quick_report(
    *paths: str | os.PathLike[str],
    server_url: str | Sequence[str] | None = None,
    images: str | os.PathLike[str] | None = None,
    duration: float = 1.0,
    parity_images: int = 100,
    threads: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Run a short latency and parity report; returns printable text (and writes JSON/CSV to ``out_dir``).

    ``images``: a folder of class sub-folders for parity (default: the training data recorded in the models'
    manifests; without one, parity is skipped and the text says so).
    """
    if not paths:
        raise UsageError("quick_report needs at least one model folder or file")
    specs = discover_targets(paths, threads=threads)
    model = "flowers"
    for raw in paths:
        try:
            model = Manifest.load(Path(raw) if not Path(raw).is_dir() else _first_manifest_dir(Path(raw))).name
            break
        except DeepclfError:
            continue
    specs += _server_specs(server_url, model)
    targets: list[Target] = parse_targets(specs, threads=threads)

    lat = run_latency(targets, LatencyOptions(scenarios=("single-stream",), duration=duration, warmup=3,
                                              quiet=True), images=sample_images(images, n=4) if images else None)
    lines = ["== latency (single-stream, batch 1, %.0f s per target; warm-up excluded) ==" % duration]
    rows = []
    for t in lat.targets:
        r = t.results[0] if t.results else None
        rows.append({"target": t.name, "size": human_bytes(t.info.get("model_bytes")) if t.info.get("model_bytes")
                     else "-", "p50": r.latency.p50 if r else None, "p90": r.latency.p90 if r else None,
                     "p99": r.latency.p99 if r else None, "rps": r.throughput_rps if r else None,
                     "status": "ok" if t.status == "ok" else f"FAILED: {t.error}"[:90]})
    lines.append(format_table(rows, [("target", "target"), ("size", "size"), ("p50 ms", "p50"), ("p90 ms", "p90"),
                                     ("p99 ms", "p99"), ("req/s", "rps"), ("status", "status")]))
    folder = str(images) if images else default_images_for(targets)
    par = None
    if folder is None:
        lines += ["", "== parity: skipped (no image folder given and none recorded in the manifests) =="]
    else:
        try:
            data = ParityImages.from_folder(folder, limit=parity_images)
            par = run_parity(targets, data)
            lines += ["", f"== parity on {len(data.paths)} validation images of {folder} ==", par.table()]
        except DeepclfError as exc:
            lines += ["", f"== parity: skipped ({exc}) =="]
    if out_dir is not None:
        lat.write(out_dir, prefix="quick_latency")
        if par is not None:
            par.write(out_dir, prefix="quick_parity")
    return "\n".join(lines)


def _first_manifest_dir(p: Path) -> Path:
    from deepclf.runtime import resolve_model_path  # noqa: PLC0415

    return resolve_model_path(p)
