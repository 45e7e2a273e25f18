"""``quick_report``: a short latency + parity report on converted models, for ``make demo``.

Give it model folders (a training run, a ``models/<name>`` base folder or one version folder) or files; it finds
every format there (Keras, SavedModel when TensorFlow is installed, each TFLite variant), adds a server if one is
given, runs under a second of single-stream latency per target and a parity check on up to 60 validation images,
per model (each model's formats are compared with its own Keras original)::

    from deepclf.bench import quick_report
    print(quick_report("runs/basic", "models/flowers", server_url="http://127.0.0.1:8501"))
    print(quick_report(runs={"basic": "runs/basic"}, versions={"basic": "models/flowers_basic/1"}))
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
from deepclf.bench.parity import ParityImages, default_images_for, run_parity
from deepclf.bench.report import format_table, human_bytes
from deepclf.bench.specs import parse_targets
from deepclf.bench.targets import Target
from deepclf.errors import DeepclfError, UsageError
from deepclf.manifest import Manifest
from deepclf.variants import TFLITE_FILES, VARIANT_NAMES


def discover_targets(paths: Sequence[str | os.PathLike[str]], *, threads: int | None = None) -> list[str]:
    """Target specs for every model found under ``paths`` (Keras first, so it becomes the parity reference)."""
    from deepclf.runtime import resolve_model_path  # TF-free

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
        for variant in VARIANT_NAMES:
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
    for url in urls:
        u = url.rstrip("/")
        if u.startswith(("http://", "https://")):
            out.append(f"rest://{u.split('://', 1)[1]}/{model}")
        elif u.startswith(("rest://", "grpc://")) and u.count("/") == 2:
            out.append(f"{u}/{model}")  # a server without a model name: use the models' name
        else:
            out.append(u)
    return out


def _run_dir_of(version: Path) -> Path | None:
    """The training run a version folder was converted from (its manifest's ``source.run_dir``), if it exists."""
    try:
        run = Manifest.load(version).source.get("run_dir")
    except DeepclfError:
        return None
    return Path(run) if run and (Path(run) / "model.keras").is_file() else None


def _groups(
    paths: Sequence[str | os.PathLike[str]],
    runs: Mapping[str, str | os.PathLike[str]] | None,
    versions: Mapping[str, str | os.PathLike[str]] | None,
) -> dict[str, list[Path]]:
    """Model folders grouped per model, so each model's formats are compared with *its own* Keras original."""
    from deepclf.runtime import resolve_model_path  # TF-free

    groups: dict[str, list[Path]] = {}
    for name in list(dict.fromkeys([*(runs or {}), *(versions or {})])):
        groups[str(name)] = [Path(d[name]) for d in (runs or {}, versions or {}) if name in d]
    by_run: dict[Path, str] = {}
    for raw in paths:
        p = resolve_model_path(Path(raw))
        run = p if (p.is_dir() and (p / "model.keras").is_file()) else (_run_dir_of(p) if p.is_dir() else None)
        key = by_run.get(run.resolve()) if run else None
        if key is None:
            key = (run or p).name if (run or p).name not in groups else str(run or p)
            groups[key] = []
            if run:
                by_run[run.resolve()] = key
        groups[key].append(p)
    for members in groups.values():
        # a version folder alone still gets its Keras original as the parity reference, when the run is there
        if not any((m.is_dir() and (m / "model.keras").is_file()) or m.suffix == ".keras" for m in members):
            run = next((r for m in members if m.is_dir() and (r := _run_dir_of(m))), None)
            if run is not None:
                members.insert(0, run)
    return groups


def quick_report(
    *paths: str | os.PathLike[str],
    runs: Mapping[str, str | os.PathLike[str]] | None = None,
    versions: Mapping[str, str | os.PathLike[str]] | None = None,
    server_url: str | Sequence[str] | None = None,
    images: str | os.PathLike[str] | None = None,
    duration: float = 0.75,
    parity_images: int = 60,
    threads: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Run a short latency and parity report per model; returns printable text (JSON/CSV go to ``out_dir``).

    ``paths``: run folders, ``models/<name>`` base folders, version folders or model files. ``runs`` and
    ``versions`` (``{"basic": run_dir}``, ``{"basic": version_dir}``) name them per model instead. A version
    folder brings its training run's Keras model along as the reference when the run folder still exists.
    ``server_url`` (``http://HOST:8501``, ``grpc://HOST:8500``, or full target specs) is added to the first model.
    ``images``: a folder of class sub-folders for parity (default: the training data recorded in the manifests;
    without one, parity is skipped and the text says so).
    """
    groups = _groups(paths, runs, versions)
    if not groups:
        raise UsageError("quick_report needs at least one model folder or file (or runs=/versions=)")
    lines: list[str] = []
    for gi, (key, members) in enumerate(groups.items()):
        specs = discover_targets(members, threads=threads)
        model = "flowers"
        for m in members:
            try:
                model = Manifest.load(m).name
                break
            except DeepclfError:
                continue
        if gi == 0:
            specs += _server_specs(server_url, model)
        lines += _one_model(key, model, specs, images, duration, parity_images, threads, out_dir, len(groups) > 1)
    return "\n".join(lines)


def _one_model(
    key: str,
    model: str,
    specs: list[str],
    images: str | os.PathLike[str] | None,
    duration: float,
    parity_images: int,
    threads: int | None,
    out_dir: str | os.PathLike[str] | None,
    several: bool,
) -> list[str]:
    targets: list[Target] = parse_targets(specs, threads=threads)
    lat = run_latency(
        targets,
        LatencyOptions(scenarios=("single-stream",), duration=duration, warmup=3, quiet=True),
        images=sample_images(images, n=4) if images else None,
    )
    title = f" [{key}: model {model!r}]" if several else ""
    lines = [f"== latency{title}: single-stream, batch 1, {duration:g} s per target, warm-up excluded =="]
    rows = []
    for t in lat.targets:
        r = t.results[0] if t.results else None
        rows.append(
            {
                "target": t.name,
                "size": human_bytes(t.info.get("model_bytes")) if t.info.get("model_bytes") else "-",
                "p50": r.latency.p50 if r else None,
                "p90": r.latency.p90 if r else None,
                "p99": r.latency.p99 if r else None,
                "rps": r.throughput_rps if r else None,
                "status": "ok" if t.status == "ok" else f"FAILED: {t.error}"[:90],
            }
        )
    lines.append(
        format_table(
            rows,
            [
                ("target", "target"),
                ("size", "size"),
                ("p50 ms", "p50"),
                ("p90 ms", "p90"),
                ("p99 ms", "p99"),
                ("req/s", "rps"),
                ("status", "status"),
            ],
        )
    )
    folder = str(images) if images else default_images_for(targets)
    par = None
    if folder is None:
        lines += ["", f"== parity{title}: skipped (no image folder given and none recorded in the manifests) =="]
    else:
        try:
            data = ParityImages.from_folder(folder, limit=parity_images)
            par = run_parity(targets, data)
            lines += ["", f"== parity{title} on {len(data.paths)} validation images of {folder} ==", par.table()]
        except DeepclfError as exc:
            lines += ["", f"== parity{title}: skipped ({exc}) =="]
    if out_dir is not None:
        suffix = f"_{key}" if several else ""
        lat.write(out_dir, prefix=f"quick_latency{suffix}")
        if par is not None:
            par.write(out_dir, prefix=f"quick_parity{suffix}")
    return [*lines, ""]
