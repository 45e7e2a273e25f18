"""Load generators in MLPerf's vocabulary, plus a perf_analyzer-style concurrency sweep.

* **single-stream**: one request after another (batch 1); MLPerf reports its p90.
* **server**: open loop; requests *arrive* at Poisson-distributed times at ``rate`` per second, whether or not
  earlier ones finished. Latency is measured from the scheduled arrival, so time spent queueing behind busy
  workers counts (no coordinated omission). MLPerf reports p99 and whether the achieved rate kept up.
* **offline**: throughput with big batches (``batch_size`` images per request), as fast as possible.
* **concurrency**: closed loop with ``c`` clients, each sending its next request when its last one returns, for
  each ``c`` in the sweep (1, 2, 4, 8...): how throughput and p99 trade as load grows.

Every worker warms up first (``warmup`` requests each, reported separately as ``warmup``: the first call is the
cold start); measurement starts when all workers are warm. A run stops after ``duration`` seconds or ``requests``
requests, whichever comes first; requests in flight then are finished and counted. Errors are counted (with the
first few messages), never fatal. ``client_cpu`` is this process's CPU time over wall time (2.0 = two cores busy);
for in-process targets it includes the inference itself::

    res = run_scenario(target, batch, ScenarioConfig("server", duration=5, rate=40))
    res.latency.p99, res.achieved_rate, res.errors
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from deepclf.bench import prom
from deepclf.bench.remote_targets import RemoteTarget
from deepclf.bench.stats import LatencySummary, summarize
from deepclf.bench.targets import Batch, Target
from deepclf.errors import UsageError

SCENARIOS = ("single-stream", "server", "offline", "concurrency")
MAX_ERROR_MESSAGES = 5
#: Samples kept per run in JSON (for plots); more are subsampled evenly.
MAX_KEPT_SAMPLES = 20_000


@dataclass(frozen=True)
class ScenarioConfig:
    """How to run one scenario. ``concurrency`` is the number of closed-loop clients (or, for ``server``, the
    most requests in flight at once); ``rate`` only matters for ``server``."""

    scenario: str = "single-stream"
    duration: float | None = 10.0
    requests: int | None = None
    warmup: int = 5
    batch_size: int = 1
    concurrency: int = 1
    rate: float | None = None
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise UsageError(f"unknown scenario {self.scenario!r}; expected one of {', '.join(SCENARIOS)}")
        if self.duration is None and self.requests is None:
            raise UsageError("a scenario needs a duration (seconds) or a request count; got neither")
        if self.duration is not None and not self.duration > 0:
            raise UsageError(f"duration must be a positive number of seconds, got {self.duration!r}")
        if self.requests is not None and self.requests < 1:
            raise UsageError(f"request count must be at least 1, got {self.requests!r}")
        if self.warmup < 0:
            raise UsageError(f"warm-up must be 0 or more requests, got {self.warmup!r}")
        if self.batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {self.batch_size!r}")
        if self.concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {self.concurrency!r}")
        if self.scenario == "server" and not (self.rate and self.rate > 0):
            raise UsageError(f"the server scenario needs a positive --rate (requests/s), got {self.rate!r}")


@dataclass
class ScenarioResult:
    """One measurement: a target under one scenario at one load level. Latencies are in milliseconds."""

    target: str
    scenario: str
    concurrency: int
    batch_size: int
    rate: float | None
    count: int
    errors: int
    error_messages: list[str]
    duration_s: float
    throughput_rps: float
    throughput_ips: float
    latency: LatencySummary
    warmup: dict[str, Any]
    client_cpu: float
    achieved_rate: float | None = None
    offered_rate: float | None = None
    dropped: int = 0
    queue_ms: LatencySummary | None = None
    server: dict[str, Any] | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("latency", "queue_ms", "latencies_ms")}
        d["latency_ms"] = self.latency.to_dict()
        d["queue_ms"] = self.queue_ms.to_dict() if self.queue_ms else None
        if samples:
            d["latencies_ms"] = [round(x, 4) for x in self.latencies_ms]
        return d


class _Progress:
    """A tqdm bar on stderr (disabled when quiet or not a terminal); thread-safe updates."""

    def __init__(self, desc: str, total: int | None, quiet: bool) -> None:
        self._bar = None
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm  # optional

                self._bar = tqdm(total=total, desc=desc, unit="req", file=sys.stderr, leave=False, mininterval=0.2)
            except ImportError:  # pragma: no cover - tqdm is in the bench extra
                self._bar = None
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _Recorder:
    """What the workers of one run collect (append-only lists are safe across threads in CPython)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.queue: list[float] = []
        self.warm: list[float] = []
        self.warm_errors: list[str] = []
        self.errors = 0
        self.messages: list[str] = []
        self.last_done = 0.0
        self._lock = threading.Lock()

    def error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            if len(self.messages) < MAX_ERROR_MESSAGES:
                self.messages.append(f"{type(exc).__name__}: {exc}"[:500])


def _warm(target: Target, batch: Batch, n: int, rec: _Recorder) -> bool:
    """``n`` warm-up requests; true unless every one of them failed."""
    ok = n == 0
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            target.predict(batch)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            rec.warm_errors.append(f"{type(exc).__name__}: {exc}"[:500])
            continue
        rec.warm.append((time.perf_counter() - t0) * 1e3)
        ok = True
    return ok


def _batches(batch: Batch, batch_size: int, k: int = 8) -> list[Batch]:
    """Up to ``k`` distinct request batches of ``batch_size`` images, cycling through the sample images."""
    n = len(batch)
    return [batch.take([(j * batch_size + i) % n for i in range(batch_size)]) for j in range(max(1, min(k, n)))]


def run_scenario(target: Target, images: Batch, cfg: ScenarioConfig) -> ScenarioResult:
    """Run one scenario against an opened target with the sample ``images``; never raises for request errors."""
    if cfg.scenario == "single-stream":
        cfg = replace(cfg, concurrency=1)  # one request after another, by definition
    requests = _batches(images, cfg.batch_size)
    rec = _Recorder()
    workers = cfg.concurrency
    schedule: np.ndarray | None = None
    if cfg.scenario == "server":
        assert cfg.rate is not None
        rng = np.random.default_rng(cfg.seed)
        n = cfg.requests or max(1, math.ceil(cfg.rate * float(cfg.duration or 0) * 1.2) + 10)
        schedule = np.cumsum(rng.exponential(1.0 / cfg.rate, size=n))
        if cfg.duration is not None:
            schedule = schedule[schedule < cfg.duration] if (schedule < cfg.duration).any() else schedule[:1]
    total = len(schedule) if schedule is not None else cfg.requests
    desc = f"{target.name} {cfg.scenario}" + (f" c={workers}" if cfg.scenario == "concurrency" else "")
    progress = _Progress(desc, total, cfg.quiet)

    warmed: list[bool] = []
    start_barrier = threading.Barrier(workers + 1)
    go = threading.Event()
    stop = threading.Event()
    ticket_lock = threading.Lock()
    tickets = [0]
    t0_box = [0.0]

    def next_ticket() -> int | None:
        with ticket_lock:
            i = tickets[0]
            limit = len(schedule) if schedule is not None else cfg.requests
            if limit is not None and i >= limit:
                return None
            tickets[0] = i + 1
            return i

    def worker(wid: int) -> None:
        try:
            warmed.append(_warm(target, requests[wid % len(requests)], cfg.warmup, rec))
        finally:
            try:
                start_barrier.wait()
            except threading.BrokenBarrierError:
                return
        go.wait()
        k = wid
        while not stop.is_set():
            i = next_ticket()
            if i is None:
                break
            req = requests[k % len(requests)]
            k += 1
            due: float | None = None  # the request's scheduled start (server scenario)
            if schedule is not None:
                due = t0_box[0] + float(schedule[i])
                delay = due - time.perf_counter()
                if delay > 0 and stop.wait(delay):
                    break
            start = time.perf_counter()
            try:
                target.predict(req)
            except Exception as exc:  # noqa: BLE001 - counted and reported, never fatal
                rec.error(exc)
                progress.update()
                continue
            done = time.perf_counter()
            origin = due if due is not None else start
            rec.latencies.append((done - origin) * 1e3)
            if due is not None:
                rec.queue.append((start - due) * 1e3)
            rec.last_done = max(rec.last_done, done)
            progress.update()

    threads = [threading.Thread(target=worker, args=(w,), name=f"bench-{w}", daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    start_barrier.wait()  # all workers warm
    metrics_url = target.metrics_url
    model = target.model if isinstance(target, RemoteTarget) else None
    before, server_error = _scrape(metrics_url)
    if not any(warmed):
        stop.set()  # every warm-up request failed: the target is down; do not spend the duration on it
    cpu0, t0 = time.process_time(), time.perf_counter()
    t0_box[0] = t0
    go.set()
    deadline = None
    if cfg.duration is not None:
        # An open loop that falls behind is given a grace period to drain, then the rest counts as dropped.
        deadline = t0 + cfg.duration * (1.5 if schedule is not None else 1.0) + (2.0 if schedule is not None else 0)
    _join(threads, deadline, stop)
    t1, cpu1 = time.perf_counter(), time.process_time()
    progress.close()
    after, err2 = _scrape(metrics_url) if before is not None else (None, None)

    wall = max(t1 - t0, 1e-9)
    count = len(rec.latencies)
    errors = rec.errors
    messages = list(rec.messages)
    if not any(warmed):
        errors = max(errors, len(rec.warm_errors))
        messages = [f"warm-up: {m}" for m in rec.warm_errors[:MAX_ERROR_MESSAGES]]
    dropped = 0
    achieved = offered = None
    if schedule is not None:
        # The Poisson draw offers about ``rate`` requests/s; the number actually offered is what to keep up with.
        by_duration = cfg.requests is None or len(schedule) < cfg.requests
        duration = cfg.duration if by_duration else None
        offered = len(schedule) / (float(duration) if duration is not None else max(float(schedule[-1]), 1e-9))
        dropped = max(0, len(schedule) - count - rec.errors)
        span = (rec.last_done - t0) if count else wall
        achieved = count / span if span > 0 else 0.0
    lat = np.asarray(rec.latencies, dtype=np.float64)
    kept = lat if lat.size <= MAX_KEPT_SAMPLES else lat[np.linspace(0, lat.size - 1, MAX_KEPT_SAMPLES).astype(int)]
    warm = np.asarray(rec.warm, dtype=np.float64)
    server: dict[str, Any] | None = None
    if metrics_url:
        if before is not None and after is not None:
            server = prom.server_view(before, after, model=model)
        else:
            server = {"error": server_error or err2 or "metrics unavailable"}
    return ScenarioResult(
        target=target.name,
        scenario=cfg.scenario,
        concurrency=workers,
        batch_size=cfg.batch_size,
        rate=cfg.rate if cfg.scenario == "server" else None,
        count=count,
        errors=errors,
        error_messages=messages,
        duration_s=wall,
        throughput_rps=count / wall,
        throughput_ips=count * cfg.batch_size / wall,
        latency=summarize(lat),
        warmup={
            "requests": int(len(rec.warm) + len(rec.warm_errors)),
            "errors": len(rec.warm_errors),
            "first_ms": float(warm[0]) if warm.size else None,
            "mean_ms": float(warm.mean()) if warm.size else None,
            "max_ms": float(warm.max()) if warm.size else None,
        },
        client_cpu=(cpu1 - cpu0) / wall,
        achieved_rate=achieved,
        offered_rate=offered,
        dropped=dropped,
        queue_ms=summarize(rec.queue) if schedule is not None else None,
        server=server,
        latencies_ms=[float(x) for x in kept],
    )


def _join(
    threads: list[threading.Thread], deadline: float | None, stop: threading.Event, hang_grace: float = 60.0
) -> None:
    """Wait for the workers; at ``deadline`` ask them to stop, and ``hang_grace`` s later stop waiting for ones
    stuck in a request (they are daemon threads; their requests are simply not counted)."""
    for t in threads:
        while t.is_alive():
            now = time.perf_counter()
            if deadline is not None and now >= deadline:
                stop.set()
                if now >= deadline + hang_grace:
                    return
            t.join(timeout=0.05)


def _scrape(url: str | None) -> tuple[prom.Samples | None, str | None]:
    if not url:
        return None, None
    try:
        return prom.scrape(url), None
    except Exception as exc:  # noqa: BLE001 - a server without metrics is normal (reported, not fatal)
        return None, f"cannot scrape {url}: {type(exc).__name__}: {exc}"


def sweep(
    target: Target,
    images: Batch,
    base: ScenarioConfig,
    levels: list[int],
) -> list[ScenarioResult]:
    """The concurrency sweep: one closed-loop run per level in ``levels``."""
    out = []
    for c in levels:
        res = run_scenario(target, images, replace(base, scenario="concurrency", concurrency=int(c)))
        out.append(res)
        if res.count == 0 and res.errors:
            break  # the target is failing; higher levels would only repeat the errors
    return out
