"""``deepclf bench latency``: run scenarios against targets and collect one report.

Targets are measured one after the other (each is opened, measured under every scenario, then closed), so they
never compete for the CPU. A target that cannot be opened, or whose every request fails, is reported with its
error and the run goes on::

    report = run_latency(["keras:runs/basic", "tflite:models/flowers/1?variant=int8"],
                         LatencyOptions(scenarios=("single-stream", "concurrency"), duration=5))
    print(report.table())
    report.write("results/")            # latency.json, latency.csv (+ plots with plots=True)
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepclf.bench.env import describe, environment
from deepclf.bench.report import format_table, human_bytes, write_report
from deepclf.bench.scenarios import SCENARIOS, ScenarioConfig, ScenarioResult, run_scenario, sweep
from deepclf.bench.specs import parse_targets
from deepclf.bench.targets import Batch, Target
from deepclf.data.split import IMAGE_EXTENSIONS
from deepclf.errors import UsageError

DEFAULT_SIZE = (180, 180)


@dataclass(frozen=True)
class LatencyOptions:
    """What ``run_latency`` runs. ``duration``/``requests`` apply to each measurement (each concurrency level)."""

    scenarios: tuple[str, ...] = ("single-stream",)
    duration: float | None = 10.0
    requests: int | None = None
    warmup: int = 5
    batch_size: int = 32  # offline
    rate: float = 20.0  # server scenario, requests/s
    server_workers: int = 8  # server scenario: most requests in flight
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    offline_concurrency: int = 1
    size: tuple[int, int] | None = None  # input size for targets that do not say (remote ones)
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        bad = [s for s in self.scenarios if s not in SCENARIOS]
        if bad or not self.scenarios:
            raise UsageError(f"unknown scenario(s) {bad or '(none)'}; expected some of {', '.join(SCENARIOS)}")
        if not self.concurrency or any(int(c) < 1 for c in self.concurrency):
            raise UsageError(f"concurrency levels must be positive integers, got {list(self.concurrency)!r}")

    def configs(self) -> list[ScenarioConfig]:
        """One ``ScenarioConfig`` per scenario (the concurrency sweep is one config, expanded by ``sweep``)."""
        base: dict[str, Any] = {
            "duration": self.duration,
            "requests": self.requests,
            "warmup": self.warmup,
            "seed": self.seed,
            "quiet": self.quiet,
        }
        out = []
        for s in self.scenarios:
            if s == "single-stream":
                out.append(ScenarioConfig(s, batch_size=1, concurrency=1, **base))
            elif s == "server":
                out.append(ScenarioConfig(s, batch_size=1, concurrency=self.server_workers, rate=self.rate, **base))
            elif s == "offline":
                out.append(ScenarioConfig(s, batch_size=self.batch_size, concurrency=self.offline_concurrency, **base))
            else:
                out.append(ScenarioConfig(s, batch_size=1, concurrency=int(self.concurrency[0]), **base))
        return out


@dataclass
class TargetRun:
    """A target's outcome: ``status`` is ``ok`` or ``failed`` (``error`` says why); ``open_s`` is load time."""

    name: str
    spec: str
    info: dict[str, Any]
    status: str = "ok"
    error: str | None = None
    open_s: float | None = None
    results: list[ScenarioResult] = field(default_factory=list)

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "results"}
        d["results"] = [r.to_dict(samples=samples) for r in self.results]
        return d


#: Columns of the terminal table and the CSV (CSV has more).
TABLE_COLUMNS = [
    ("target", "target"),
    ("scenario", "scenario"),
    ("c", "concurrency"),
    ("batch", "batch_size"),
    ("n", "count"),
    ("err", "errors"),
    ("p50 ms", "p50_ms"),
    ("p90 ms", "p90_ms"),
    ("p99 ms", "p99_ms"),
    ("mean ms", "mean_ms"),
    ("req/s", "throughput_rps"),
    ("img/s", "throughput_ips"),
    ("cpu", "client_cpu"),
    ("srv p50 ms", "server_p50_ms"),
]


@dataclass
class LatencyReport:
    """Environment, options and every target's results; renders as a table, JSON and CSV."""

    environment: dict[str, Any]
    options: dict[str, Any]
    targets: list[TargetRun]

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per measurement (failed targets get one row with their error)."""
        rows: list[dict[str, Any]] = []
        for t in self.targets:
            common = {
                "target": t.name,
                "spec": t.spec,
                "status": t.status,
                "format": t.info.get("format"),
                "variant": t.info.get("variant"),
                "transport": t.info.get("transport"),
                "send": t.info.get("send"),
                "threads": t.info.get("threads"),
                "model_bytes": t.info.get("model_bytes"),
                "open_s": t.open_s,
            }
            if t.status != "ok" or not t.results:
                rows.append({**common, "scenario": "-", "error": t.error})
                continue
            for r in t.results:
                lat = r.latency
                srv = (r.server or {}).get("request_latency") or {}
                rows.append(
                    {
                        **common,
                        "scenario": r.scenario,
                        "concurrency": r.concurrency,
                        "batch_size": r.batch_size,
                        "rate": r.rate,
                        "offered_rate": r.offered_rate,
                        "achieved_rate": r.achieved_rate,
                        "dropped": r.dropped,
                        "count": r.count,
                        "errors": r.errors,
                        "p50_ms": lat.p50,
                        "p90_ms": lat.p90,
                        "p95_ms": lat.p95,
                        "p99_ms": lat.p99,
                        "p999_ms": lat.p999,
                        "mean_ms": lat.mean,
                        "std_ms": lat.std,
                        "min_ms": lat.min,
                        "max_ms": lat.max,
                        "throughput_rps": r.throughput_rps,
                        "throughput_ips": r.throughput_ips,
                        "client_cpu": r.client_cpu,
                        "duration_s": r.duration_s,
                        "warmup_first_ms": r.warmup.get("first_ms"),
                        "warmup_mean_ms": r.warmup.get("mean_ms"),
                        "server_requests": (r.server or {}).get("requests"),
                        "server_p50_ms": srv.get("p50_ms"),
                        "server_p99_ms": srv.get("p99_ms"),
                        "server_mean_ms": srv.get("mean_ms"),
                        "error": "; ".join(r.error_messages[:1]) or None,
                    }
                )
        return rows

    def table(self) -> str:
        """The terminal report: environment line, table, then errors and warm-up notes."""
        rows = self.rows()
        lines = [f"environment: {describe(self.environment)}", "", format_table(rows, TABLE_COLUMNS)]
        notes = []
        for t in self.targets:
            if t.status != "ok":
                notes.append(f"  {t.name}: FAILED - {t.error}")
                continue
            size = human_bytes(t.info.get("model_bytes")) if t.info.get("model_bytes") else None
            first = next((r.warmup.get("first_ms") for r in t.results if r.warmup.get("first_ms")), None)
            bits = [
                f"load {t.open_s:.2f} s" if t.open_s is not None else None,
                f"first request {first:.1f} ms" if first else None,
                f"model {size}" if size else None,
                t.info.get("delegate"),
            ]
            notes.append(f"  {t.name}: " + ", ".join(b for b in bits if b))
            for r in t.results:
                for m in r.error_messages[:3]:
                    notes.append(f"    {r.scenario} c={r.concurrency}: {r.errors} error(s), e.g. {m}")
                if r.scenario == "server" and r.achieved_rate is not None:
                    offered = r.offered_rate or r.rate or 0.0
                    keep = "kept up" if r.achieved_rate >= 0.95 * offered and not r.dropped else "FELL BEHIND"
                    notes.append(
                        f"    server: rate {r.rate:.1f}/s (offered {offered:.1f}/s), achieved "
                        f"{r.achieved_rate:.1f}/s ({keep}), "
                        f"{r.dropped} dropped, queueing p99 {r.queue_ms.p99 if r.queue_ms else 0:.1f} ms"
                    )
                if r.server and "error" in r.server:
                    notes.append(f"    server metrics: {r.server['error']}")
        return "\n".join([*lines, "", "notes (warm-up excluded from the table):", *notes])

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        return {
            "schema": "deepclf.bench.latency/1",
            "environment": self.environment,
            "options": self.options,
            "targets": [t.to_dict(samples=samples) for t in self.targets],
        }

    def write(self, out_dir: str | os.PathLike[str], *, plots: bool = False, prefix: str = "latency") -> list[Path]:
        """Write ``<prefix>.json`` (with raw samples) and ``<prefix>.csv`` (and PNG plots) into ``out_dir``."""
        paths = write_report(out_dir, prefix, self.to_dict(), self.rows())
        if plots:
            from deepclf.bench import plots as _plots  # matplotlib is imported only for plots

            paths += _plots.latency_plots(self, out_dir, prefix=prefix)
        return paths


def sample_images(source: str | os.PathLike[str] | None = None, n: int = 8) -> list[bytes]:
    """Encoded sample images: ``n`` files spread over a folder (recursively), or synthetic photo-sized JPEGs.

    Content does not change a CNN's compute, but encoded size changes what ``send=bytes`` costs, so the
    synthetic ones are photo-like: 320x240 smooth gradients with noise, JPEG quality 90 (~20 KB, like the
    flowers photos).
    """
    if source is not None:
        root = Path(source)
        if root.is_file():
            return [root.read_bytes()]
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise UsageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
        pick = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(n, len(files)))]
        return [p.read_bytes() for p in pick]
    rng = np.random.default_rng(0)
    out = []
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    for i in range(n):
        base = np.stack([xx / 320 * 255, yy / 240 * 255, (xx + yy) / 560 * 255], axis=-1)
        arr = np.clip(np.roll(base, 40 * i, axis=1) + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def run_target(
    target: Target,
    images: Sequence[bytes],
    opts: LatencyOptions,
    *,
    default_size: tuple[int, int] = DEFAULT_SIZE,
) -> TargetRun:
    """Open one target, run every scenario on it, close it; failures end up in the returned ``TargetRun``."""
    run = TargetRun(target.name, target.spec, target.info())
    t0 = time.perf_counter()
    try:
        target.open()
    except Exception as exc:  # noqa: BLE001 - a failing target is reported, not fatal
        run.status, run.error = "failed", f"cannot open: {type(exc).__name__}: {exc}"
        return run
    try:
        run.open_s = time.perf_counter() - t0
        run.info = target.info()
        size = target.input_size or opts.size or default_size
        batch = Batch.from_sources(list(images), size)
        for cfg in opts.configs():
            if cfg.scenario == "concurrency":
                run.results += sweep(target, batch, cfg, list(opts.concurrency))
            else:
                run.results.append(run_scenario(target, batch, cfg))
        if run.results and all(r.count == 0 for r in run.results):
            run.status = "failed"
            first = next((m for r in run.results for m in r.error_messages), "no request succeeded")
            run.error = f"every request failed: {first}"
    except Exception as exc:  # noqa: BLE001 - e.g. preprocessing for an odd input size; reported
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        target.close()
    return run


def run_latency(
    targets: Sequence[str | Target],
    opts: LatencyOptions | None = None,
    *,
    images: Sequence[bytes] | None = None,
    threads: int | None = None,
    on_target: Callable[[TargetRun], None] | None = None,
) -> LatencyReport:
    """Measure every target under every scenario in ``opts``; returns the report (nothing is written)."""
    opts = opts or LatencyOptions()
    parsed = parse_targets(targets, threads=threads)
    imgs = list(images) if images is not None else sample_images()
    runs: list[TargetRun] = []
    size = opts.size or DEFAULT_SIZE
    for t in parsed:
        run = run_target(t, imgs, opts, default_size=size)
        if opts.size is None and t.input_size:
            size = t.input_size  # remote targets later in the list get the size the local ones declared
        runs.append(run)
        if on_target:
            on_target(run)
    options = asdict(opts)
    options["threads"] = threads
    options["images"] = len(imgs)
    return LatencyReport(environment(), options, runs)
