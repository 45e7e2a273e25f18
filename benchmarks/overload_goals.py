#!/usr/bin/env python3
"""Overload without collapse (issue 22): the server's goodput when clients outnumber it, in one run.

``deepclf serve`` with default flags on the fp32 basic CNN, every REST load posting one flower photo
(``{"signature_name": "predict_image_bytes", "instances": [{"b64": ...}]}``, the first 320x240 JPEG of the data
folder) with ``hey``, the closed-loop load generator that sends the next request as soon as an answer comes back
(so a refusal is retried at once). In order, each ratio against the capacity measured in the same run:

0. capacity: ``hey -c 4`` for ``--seconds``: served (200) per second, and the latency percentiles;
1. 64 retry-at-once clients (``hey -c 64``): goodput >= 85% of capacity, every answer 200, 503 or 504;
2. 64 ``deepclf.clients`` clients (``RestClient``, then ``GrpcClient``; default retry settings, one thread and one
   client each, in 2 processes), a fixed number of requests each: goodput >= 90% of capacity, every request ends in
   a result or a deadline error, none lost; none duplicated in effect (the server's count of served predicts equals
   the results the clients got);
3. a burst of 256 clients for ``--seconds`` beside 4 steady ones (``hey -c 4`` from 2 s before to 4 s after):
   ``/healthz`` always within 1 s, the server's RSS growth <= 64 MB, and the 4 clients' p99 in the 2 s from 1 s
   after the burst back to the unloaded c=4 p99 (step 0);
4. REST (hey) and gRPC (``deepclf.bench.overload``, image bytes) latency at c=1 and c=4, against the server of the
   previous commit (``--baseline``, a git worktree run with this venv), alternating old/new twice, 5 s each: p50
   and p99 no worse (within 10%, this machine's run-to-run spread).

``/healthz`` is polled every 100 ms through steps 1-3 ("under any of the loads"). ::

    python benchmarks/overload_goals.py               # ~4 min; the goal table on stdout, and a results page
    python benchmarks/overload_goals.py --model_base_path models/flowers --baseline d3c3cd1 --out /tmp/overload
    python benchmarks/overload_goals.py --latency-only --baseline ea5a90d   # goal 4 alone: a refactor's check

The page and the raw figures (``index.md``, ``overload_goals.json``) go to ``docs/results/<host>-<date>-overload/``,
or ``<host>-<date>-latency-vs-<baseline>/`` with ``--latency-only``.

Needs ``hey`` (``apt-get install hey``). Without ``--model_base_path`` the model is ``benchmarks/work/models/
flowers_basic`` (``make bench``'s), trained for one epoch and converted (fp32) when missing: its speed, not its
accuracy, is what is measured.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import importlib
import json
import math
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))  # run from a checkout without installing
sys.path.insert(1, str(HERE))

import numpy as np

from deepclf.bench.overload import photo_body, run_client_load, run_load
from deepclf.bench.process import free_port, log_tail, serve_command, stop_process, wait_available
from deepclf.fsutil import atomic_write_text
from deepclf.versions import latest_version

#: benchmarks/run.py, for its data folder and photo choice (one rule for both benchmarks).
bench_run: Any = importlib.import_module("run")
find_data, photo_320x240 = bench_run.find_data, bench_run.photo_320x240
#: The file whose first commit brought admission by time: goal 4's "previous commit" is that commit's parent.
ADMISSION_TEST = "tests/serving/test_admission.py"
RETRY_AT_ONCE_CLIENTS = 64
CLIENT_LIBRARY_CLIENTS = 64
BURST_CLIENTS = 256
STEADY_CLIENTS = 4
HEALTH_PERIOD = 0.1
HEALTH_BOUND_S = 1.0
RSS_BOUND_MB = 64.0
LATENCY_SECONDS = 5.0
#: Goal 4's tolerance: run-to-run spread of the same server on this machine.
SAME_LATENCY = 1.10


def log(msg: str) -> None:
    print(f"[overload {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ servers


@dataclass
class Server:
    """A ``deepclf serve`` child (default flags), of this checkout or of ``src`` (another commit's worktree)."""

    label: str
    proc: subprocess.Popen
    rest_url: str
    grpc_target: str
    log: Any

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
        return math.nan

    def metrics(self) -> str:
        host, port = self.rest_url.split("//")[1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/monitoring/prometheus/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return text

    def metric(self, name: str) -> float:
        """An unlabelled metric's value (NaN when the server has none)."""
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return math.nan

    def served(self, model: str) -> float:
        """The server's count of predicts answered OK (its Prometheus metrics)."""
        total = 0.0
        for line in self.metrics().splitlines():
            wanted = ('method="predict"', f'model_name="{model}"', 'status="OK"')
            if line.startswith("deepclf_serving_request_count_total{") and all(w in line for w in wanted):
                total += float(line.rsplit(" ", 1)[1])
        return total


@contextmanager
def server(label: str, base_path: Path, model: str, src: Path | None = None) -> Iterator[Server]:
    rest_port, grpc_port = free_port(), free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src or REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile("w", prefix=f"overload-goals-{label}-", suffix=".log") as logf:
        proc = subprocess.Popen(
            serve_command(model, base_path, grpc_port, rest_port), stdout=logf, stderr=logf, env=env
        )
        try:
            error = wait_available(proc, rest_port, model, timeout=120, poll_interval=0.2)
            if error is not None:
                raise RuntimeError(f"{label} server: {error}: {log_tail(logf.name)}")
            yield Server(label, proc, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", logf)
        finally:
            stop_process(proc)


def git(*args: str, check: bool = True) -> str:
    """``git -C <repo> args...``'s output."""
    exe = shutil.which("git") or "git"
    return subprocess.run([exe, "-C", str(REPO), *args], check=check, capture_output=True, text=True).stdout.strip()


@contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """A git worktree of ``rev`` (removed afterwards): its ``src`` is the previous commit's server."""
    path = Path(tempfile.mkdtemp(prefix="overload-baseline-"))
    git("worktree", "add", "--detach", str(path), rev)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ hey


@dataclass
class Hey:
    """One ``hey`` run: status counts, connection errors, and (``csv``) each request's start offset and latency."""

    seconds: float
    statuses: dict[int, int]
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # served (200) only, seconds
    offsets: list[float] = field(default_factory=list)  # their start, seconds after hey started
    started: float = 0.0  # time.time() when hey was started

    def rate(self, status: int = 200) -> float:
        return self.statuses.get(status, 0) / self.seconds


def hey_command(url: str, body: Path, clients: int, seconds: float, csv: bool) -> list[str]:
    cmd = ["hey", "-c", str(clients), "-z", f"{seconds:g}s", "-m", "POST", "-T", "application/json", "-D", str(body)]
    return [*cmd, *(["-o", "csv"] if csv else []), url]


def start_hey(url: str, body: Path, clients: int, seconds: float, csv: bool = False) -> tuple[subprocess.Popen, float]:
    cmd = hey_command(url, body, clients, seconds, csv)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), time.time()


def finish_hey(proc: subprocess.Popen, started: float, seconds: float, csv: bool = False) -> Hey:
    out, err = proc.communicate(timeout=seconds + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"hey failed ({proc.returncode}): {err[-2000:]}")
    if csv:  # response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
        statuses: dict[int, int] = {}
        run = Hey(seconds, statuses, started=started)
        for line in out.splitlines()[1:]:
            parts = line.split(",")
            if len(parts) != 8:
                continue
            status = int(parts[6])
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                run.latencies.append(float(parts[0]))
                run.offsets.append(float(parts[7]))
        return run
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors_part = out.split("Error distribution:", 1)[1] if "Error distribution:" in out else ""
    errors = {msg.strip()[:200]: int(n) for n, msg in re.findall(r"\[(\d+)\]\s+(.+)", errors_part)}
    return Hey(float(total.group(1)) if total else seconds, statuses, errors, started=started)


def hey(url: str, body: Path, clients: int, seconds: float, csv: bool = False) -> Hey:
    proc, started = start_hey(url, body, clients, seconds, csv)
    return finish_hey(proc, started, seconds, csv)


# ------------------------------------------------------------------------------------------------ watchers


class Watch(threading.Thread):
    """Polls ``/healthz`` every ``HEALTH_PERIOD`` and samples the server's RSS: (time, seconds, status) and
    (time, MB) lists, read for any time window."""

    def __init__(self, srv: Server) -> None:
        super().__init__(daemon=True)
        self.srv = srv
        self.health: list[tuple[float, float, int]] = []
        self.rss: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        host, port = self.srv.rest_url.split("//")[1].rsplit(":", 1)
        while not self.stop.is_set():
            t0 = time.time()
            self.rss.append((t0, self.srv.rss_mb()))
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                status = -1
            finally:
                conn.close()
            self.health.append((t0, time.time() - t0, status))
            self.stop.wait(HEALTH_PERIOD)

    def health_in(self, t0: float, t1: float) -> dict[str, Any]:
        polls = [(dt, st) for t, dt, st in self.health if t0 <= t < t1]
        return {
            "polls": len(polls),
            "max_ms": max((dt for dt, _ in polls), default=math.nan) * 1e3,
            "not_200": sum(1 for _, st in polls if st != 200),
        }

    def rss_in(self, t0: float, t1: float) -> float:
        return max((mb for t, mb in self.rss if t0 <= t < t1), default=math.nan)


# ------------------------------------------------------------------------------------------------ goals


@dataclass
class Goal:
    name: str
    target: str
    measured: str
    met: bool
    by: str  # by how much it is met or missed


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children (hey, the client processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def cpu_split(srv: Server, into: dict[str, Any]) -> Iterator[None]:
    """Where the 2 cores went during a load: the server's CPU seconds and the load generator's (``into``)."""
    server0, load0, wall0 = srv.cpu_s(), children_cpu_s(), time.time()
    yield
    into["cpu_s"] = {
        "server": srv.cpu_s() - server0,
        "load_generator": children_cpu_s() - load0,
        "wall": time.time() - wall0,
    }


def cpu_per(split: dict[str, Any], served: int) -> str:
    """CPU ms per served request, the server's and the load generator's (they share the cores)."""
    cpu = split["cpu_s"]
    per = {k: cpu[k] / max(served, 1) * 1e3 for k in ("server", "load_generator")}
    return f"CPU per served request: server {per['server']:.1f} ms, clients {per['load_generator']:.1f} ms"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else math.nan


def measure_new(args: argparse.Namespace, body: Path, photo: Path, report: dict[str, Any]) -> list[Goal]:
    goals: list[Goal] = []
    with server("new", args.model_base_path, args.model_name) as srv:
        url = f"{srv.rest_url}/v1/models/{args.model_name}:predict"
        hey(url, body, STEADY_CLIENTS, 2)  # warm-up: interpreter, allocator, connections
        log("capacity: hey -c 4")
        cpu0: dict[str, Any] = {}
        with cpu_split(srv, cpu0):
            cap = hey(url, body, STEADY_CLIENTS, args.seconds, csv=True)
        capacity = cap.rate()
        un_p99 = pct(cap.latencies, 99)
        report["capacity"] = {
            "served_per_s": capacity,
            "statuses": cap.statuses,
            "p50_ms": pct(cap.latencies, 50),
            "p99_ms": un_p99,
            **cpu0,
        }
        log(f"capacity {capacity:.1f}/s, p99 {un_p99:.1f} ms")
        watch = Watch(srv)
        watch.start()
        try:
            # 1. retry-at-once clients
            log("goal 1: hey -c 64")
            t0 = time.time()
            cpu1: dict[str, Any] = {}
            with cpu_split(srv, cpu1):
                g1 = hey(url, body, RETRY_AT_ONCE_CLIENTS, args.seconds)
            h1 = watch.health_in(t0, time.time())
            other = {s: n for s, n in g1.statuses.items() if s not in (200, 503, 504)}
            ratio = g1.rate() / capacity
            report["retry_at_once"] = {
                "served_per_s": g1.rate(),
                "ratio": ratio,
                "statuses": g1.statuses,
                "errors": g1.errors,
                "healthz": h1,
                **cpu1,
            }
            goals.append(
                Goal(
                    "64 retry-at-once clients (hey): goodput",
                    ">= 85% of capacity",
                    f"{ratio:.0%} ({g1.rate():.0f} / {capacity:.0f} per s; {cpu_per(cpu1, g1.statuses.get(200, 0))})",
                    ratio >= 0.85,
                    f"{(ratio - 0.85) * 100:+.0f} points",
                )
            )
            answers = f"{g1.statuses}" + (f", connection errors {sum(g1.errors.values())}" if g1.errors else "")
            goals.append(
                Goal(
                    "64 retry-at-once clients: answers",
                    "every answer 200, 503 or 504",
                    answers,
                    not other and not g1.errors,
                    f"{sum(other.values()) + sum(g1.errors.values())} others",
                )
            )
            # 2. deepclf.clients
            calls_each = max(10, round(capacity * args.seconds * 0.8 / CLIENT_LIBRARY_CLIENTS))
            for kind, target in (("rest", srv.rest_url), ("grpc", srv.grpc_target)):
                log(f"goal 2: 64 deepclf.clients {kind} clients x {calls_each} calls")
                served_before = srv.served(args.model_name)
                t0 = time.time()
                cpu2: dict[str, Any] = {}
                with cpu_split(srv, cpu2):
                    outcomes = run_client_load(
                        kind, target, CLIENT_LIBRARY_CLIENTS, calls_each, photo=photo, model=args.model_name
                    )
                h2 = watch.health_in(t0, time.time())
                served_delta = srv.served(args.model_name) - served_before
                ok = [o for o in outcomes if o.outcome == "ok"]
                start = min(o.started for o in outcomes)
                end = max(o.started + o.seconds for o in outcomes)
                rate = len(ok) / (end - start)
                counts = {k: sum(1 for o in outcomes if o.outcome == k) for k in ("ok", "deadline", "error")}
                expected = CLIENT_LIBRARY_CLIENTS * calls_each
                report[f"clients_{kind}"] = {
                    "calls_each": calls_each,
                    "served_per_s": rate,
                    "ratio": rate / capacity,
                    "outcomes": counts,
                    "expected": expected,
                    "server_served": served_delta,
                    "errors": sorted({o.detail for o in outcomes if o.outcome == "error"})[:5],
                    "p50_ms": pct([o.seconds for o in ok], 50),
                    "p99_ms": pct([o.seconds for o in ok], 99),
                    "healthz": h2,
                    **cpu2,
                }
                ratio = rate / capacity
                goals.append(
                    Goal(
                        f"64 deepclf.clients {'REST' if kind == 'rest' else 'gRPC'} clients: goodput",
                        ">= 90% of capacity",
                        f"{ratio:.0%} ({rate:.0f} / {capacity:.0f} per s; {cpu_per(cpu2, counts['ok'])})",
                        ratio >= 0.90,
                        f"{(ratio - 0.90) * 100:+.0f} points",
                    )
                )
                complete = len(outcomes) == expected and counts["error"] == 0
                no_dupes = served_delta == counts["ok"]
                goals.append(
                    Goal(
                        f"64 deepclf.clients {'REST' if kind == 'rest' else 'gRPC'} clients: every request",
                        "a result or a deadline error; none lost or duplicated",
                        f"{counts['ok']} results, {counts['deadline']} deadline errors, {counts['error']} other "
                        f"errors of {expected}; server served {served_delta:.0f}",
                        complete and no_dupes,
                        "all accounted for" if complete and no_dupes else f"{expected - counts['ok']} not served",
                    )
                )
            # 3. burst
            log("goal 3: burst of 256 clients beside 4")
            pre, post = 2.0, 4.0
            steady, steady_t0 = start_hey(url, body, STEADY_CLIENTS, pre + args.seconds + post, csv=True)
            time.sleep(pre)
            rss_before = watch.rss_in(time.time() - 1.0, time.time())
            burst_proc, burst_t0 = start_hey(url, body, BURST_CLIENTS, args.seconds)
            burst = finish_hey(burst_proc, burst_t0, args.seconds)
            burst_done = time.time()
            steady_run = finish_hey(steady, steady_t0, pre + args.seconds + post, csv=True)
            burst_end = burst_t0 + args.seconds  # hey stops sending new requests
            h3 = watch.health_in(steady_t0, time.time())
            rss_peak = watch.rss_in(burst_t0, burst_done + 1.0)
            starts = [steady_t0 + off for off in steady_run.offsets]

            def window(a: float, b: float) -> list[float]:
                return [lat for s, lat in zip(starts, steady_run.latencies, strict=True) if a <= s - burst_end < b]

            after = window(1.0, 3.0)
            p99_after = pct(after, 99)
            report["burst"] = {
                "burst_statuses": burst.statuses,
                "burst_errors": burst.errors,
                "burst_served_per_s": burst.rate(),
                "burst_seconds_to_finish": burst_done - burst_t0,
                "healthz": h3,
                "rss_before_mb": rss_before,
                "rss_peak_mb": rss_peak,
                "steady_p99_ms_by_second_after_burst": {
                    f"{k}..{k + 1}": pct(window(k, k + 1), 99) for k in range(-2, int(post))
                },
                "steady_p99_ms_1_to_3_s_after": p99_after,
                "steady_p99_ms_during_burst": pct(window(-args.seconds, 0), 99),
            }
            health_max = max(
                h1["max_ms"], h3["max_ms"], *(report[f"clients_{k}"]["healthz"]["max_ms"] for k in ("rest", "grpc"))
            )
            not_200 = (
                h1["not_200"]
                + h3["not_200"]
                + sum(report[f"clients_{k}"]["healthz"]["not_200"] for k in ("rest", "grpc"))
            )
            goals.append(
                Goal(
                    "/healthz under every load (goals 1-3)",
                    "always 200 within 1 s",
                    f"slowest {health_max:.0f} ms, {not_200} not 200",
                    health_max < HEALTH_BOUND_S * 1e3 and not_200 == 0,
                    f"{HEALTH_BOUND_S * 1e3 - health_max:+.0f} ms to spare",
                )
            )
            growth = rss_peak - rss_before
            goals.append(
                Goal(
                    "burst of 256: server RSS growth",
                    f"<= {RSS_BOUND_MB:.0f} MB",
                    f"{growth:.1f} MB ({rss_before:.0f} -> {rss_peak:.0f} MB)",
                    growth <= RSS_BOUND_MB,
                    f"{RSS_BOUND_MB - growth:+.1f} MB to spare",
                )
            )
            drained = burst_done - burst_end  # the burst's last answer, after hey stopped sending
            measured = (
                f"p99 {p99_after:.1f} ms ({len(after)} requests)"
                if after
                else "no request of the 4 started then: each was still queued behind the burst"
            )
            goals.append(
                Goal(
                    "burst of 256, then 4: latency 1-3 s after the burst",
                    f"p99 <= unloaded c=4 p99 ({un_p99:.1f} ms)",
                    f"{measured}; the burst's queue drained {drained:.1f} s after it stopped",
                    bool(after) and p99_after <= un_p99,
                    f"{(p99_after / un_p99 - 1) * 100:+.0f}%" if after else f"drained in {drained:.1f} s, not 1",
                )
            )
        finally:
            watch.stop.set()
            watch.join(10)
    return goals


def latency_runs(
    srv: Server, api: str, clients: int, body: Path, photo: Path, model: str, seconds: float = LATENCY_SECONDS
) -> list[float]:
    """Served latencies (seconds) of ``clients`` closed-loop clients for ``seconds``."""
    if api == "rest":
        return hey(f"{srv.rest_url}/v1/models/{model}:predict", body, clients, seconds, csv=True).latencies
    calls = run_load(srv.rest_url, srv.grpc_target, 0, clients, seconds=seconds, processes=1, model=model, photo=photo)
    return [c.seconds for c in calls if c.outcome == "ok"]


def measure_latency(args: argparse.Namespace, body: Path, photo: Path, report: dict[str, Any]) -> list[Goal]:
    """Goal 4: old and new servers side by side, each case alternating old/new twice."""
    goals: list[Goal] = []
    with (
        baseline_tree(args.baseline) as tree,
        server("old", args.model_base_path, args.model_name, tree / "src") as old,
        server("new", args.model_base_path, args.model_name) as new,
    ):
        rows: dict[str, Any] = {
            "in_flight_bound": {s.label: s.metric("deepclf_serving_max_in_flight_requests") for s in (old, new)}
        }
        for srv in (old, new):  # warm-up: connections, interpreters, allocator
            for api in ("rest", "grpc"):
                latency_runs(srv, api, 4, body, photo, args.model_name, seconds=2.0)
        for api in ("rest", "grpc"):
            for clients in (1, 4):
                got: dict[str, list[float]] = {"old": [], "new": []}
                for _ in range(2):
                    for srv in (old, new):
                        got[srv.label] += latency_runs(srv, api, clients, body, photo, args.model_name)
                row = {k: {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99), "n": len(v)} for k, v in got.items()}
                rows[f"{api}_c{clients}"] = row
                log(f"goal 4 {api} c={clients}: {row}")
                for q in ("p50", "p99"):
                    o, n = row["old"][f"{q}_ms"], row["new"][f"{q}_ms"]
                    goals.append(
                        Goal(
                            f"{'REST' if api == 'rest' else 'gRPC'} c={clients} {q} vs {args.baseline}",
                            f"no worse (<= {SAME_LATENCY:.2f}x)",
                            f"{n:.2f} ms vs {o:.2f} ms ({n / o:.2f}x)",
                            n <= o * SAME_LATENCY,
                            f"{(n / o - 1) * 100:+.0f}%",
                        )
                    )
        report["latency_vs_baseline"] = rows
    return goals


def ensure_model(args: argparse.Namespace, data: Path | None) -> None:
    if latest_version(args.model_base_path) is not None:
        return
    if data is None:
        raise SystemExit(f"no model in {args.model_base_path} and no photos to train one: pass --data FOLDER")
    run_dir = HERE / "work" / "runs" / "basic"
    log(f"training the basic CNN for one epoch into {run_dir} (speed, not accuracy, is measured)")
    cli = [sys.executable, "-m", "deepclf.cli"]
    subprocess.run(
        [*cli, "train", "--model", "basic", "--data", str(data), "--epochs", "1", "--out", str(run_dir)], check=True
    )
    out, name = args.model_base_path.parent, args.model_base_path.name
    subprocess.run(
        [
            *cli,
            "convert",
            str(run_dir),
            "--out",
            str(out),
            "--name",
            name,
            "--variants",
            "fp32",
            "--min-agreement",
            "0",
        ],
        check=True,
    )


def table(goals: list[Goal]) -> str:
    lines = ["| goal | target | measured | verdict |", "|---|---|---|---|"]
    for g in goals:
        verdict = f"met ({g.by})" if g.met else f"**missed** ({g.by})"
        lines.append(f"| {g.name} | {g.target} | {g.measured} | {verdict} |")
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model_base_path", type=Path, default=HERE / "work" / "models" / "flowers_basic")
    p.add_argument("--model_name", default="flowers")
    p.add_argument("--data", default=None, help="flower_photos folder (the photo; training when the model is missing)")
    p.add_argument("--seconds", type=float, default=10.0, help="each load's duration (default 10)")
    p.add_argument(
        "--baseline",
        default=None,
        help="git revision of goal 4's previous server (default: the commit before admission by time)",
    )
    p.add_argument("--skip-baseline", action="store_true", help="leave goal 4 out")
    p.add_argument(
        "--latency-only",
        action="store_true",
        help="goal 4 alone: this checkout's server against --baseline's, back to back (a refactor's check)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="results folder (default docs/results/<host>-<date>-overload)"
    )
    args = p.parse_args(argv)
    if args.baseline is None:
        added = git("log", "--diff-filter=A", "--format=%h", "--", ADMISSION_TEST).splitlines()
        args.baseline = git("rev-parse", "--short", f"{added[-1]}~1")
    if shutil.which("hey") is None:
        p.error("needs hey, the HTTP load generator: apt-get install hey")
    data = find_data(args.data)
    ensure_model(args, data)
    photo_bytes = photo_320x240(data)
    rev = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "src"))
    report: dict[str, Any] = {
        "commit": rev + ("+dirty" if dirty else ""),
        "baseline": None if args.skip_baseline else args.baseline,
        "commits_since_baseline": git("log", "--oneline", f"{args.baseline}..HEAD").splitlines(),
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "load_average_before": load_average(),
        "cpus": os.cpu_count(),
        "photo_bytes": len(photo_bytes),
        "seconds": args.seconds,
        "command": " ".join(["python benchmarks/overload_goals.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    log(f"commit {report['commit']}, load average {report['load_average_before']}")
    with tempfile.TemporaryDirectory(prefix="overload-goals-") as tmp:
        photo = Path(tmp) / "photo.jpg"
        photo.write_bytes(photo_bytes)
        body = Path(tmp) / "body.json"
        body.write_bytes(photo_body(photo_bytes))
        goals = [] if args.latency_only else measure_new(args, body, photo, report)
        if args.latency_only or not args.skip_baseline:
            goals += measure_latency(args, body, photo, report)
    report["load_average_after"] = load_average()
    report["goals"] = [g.__dict__ for g in goals]
    text = table(goals)
    print(text)
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname()) or "host"
    kind = f"latency-vs-{args.baseline}" if args.latency_only else "overload"
    out = args.out or REPO / "docs" / "results" / f"{host}-{_dt.datetime.now():%Y%m%d}-{kind}"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "overload_goals.json", json.dumps(report, indent=2, default=str) + "\n")
    met = sum(g.met for g in goals)
    title = (
        f"# REST and gRPC latency against {args.baseline}, back to back: {met} of {len(goals)} no worse"
        if args.latency_only
        else f"# Overload goals (issue 22): {met} of {len(goals)} met"
    )
    capacity = (
        ""
        if args.latency_only
        else f" Capacity (hey -c 4, {args.seconds:g} s): {report['capacity']['served_per_s']:.0f} served/s, p99 "
        f"{report['capacity']['p99_ms']:.1f} ms."
    )
    md = (
        f"{title}\n\n"
        f"`{report['command']}` at {report['commit']}, {report['started']}, {report['cpus']} CPUs, load average "
        f"{report['load_average_before']} before and {report['load_average_after']} after.{capacity} Raw figures: "
        f"[overload_goals.json](overload_goals.json).\n\n"
        f"{text}\n"
    )
    atomic_write_text(out / "index.md", md)
    log(f"wrote {out / 'index.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
