#!/usr/bin/env python3
"""Reproduce the project's benchmark numbers with one command (``make bench``).

What it does, in order (each step reuses what is already there):

1. models: trains the flowers CNNs with ``deepclf train`` unless ``<runs>/<model>/model.keras`` exists, and converts
   them with ``deepclf convert`` unless ``<models>/flowers_<model>/<N>/`` exists;
2. servers: starts two edge servers with ``deepclf serve`` on free loopback ports, one plain and one with
   ``--enable_batching --batching_parameters_file`` (``BATCHING_PARAMETERS``) (skipped, and the served targets
   reported as failed, if the server cannot start);
3. latency suites, each written as ``<suite>.json``/``.csv`` (+ plots):
   * ``formats``      every format in process: Keras, SavedModel, TFLite fp32/fp16/dynamic/int8 (single-stream,
                      offline);
   * ``wrapper``      the bare LiteRT interpreter loop against ``deepclf.runtime`` (fp32, int8): wrapper overhead;
   * ``serving``      in-process TFLite fp32 against the edge server over gRPC and REST (tensor and image bytes,
                      our codec and a stdlib-json client): serving overhead at p50/p99 (single-stream, server);
   * ``concurrency``  gRPC throughput at concurrency 1/2/4/8 against the plain and the batching server (the
                      batching one with ``BATCHING_PARAMETERS``: max_batch_size 8, allowed_batch_sizes 1/2/4/8);
   * ``peers``        first our server's footprint (``deepclf.bench.server_footprint``: a fresh ``deepclf serve``
                      with default flags, seconds from spawn to AVAILABLE, RSS after 1,000 mixed REST/gRPC tensor,
                      image and metadata/status requests); then REST row tensor at concurrency 1 and 4 against
                      ``deepclf serve`` (default flags), KServe's ModelServer and a hand-written FastAPI app, all on
                      the same fp32 ``.tflite`` in the same run (``deepclf.bench.peers``; a peer whose packages are
                      missing is skipped with one line), then, with the peers stopped, what the performance goals
                      compare against: our server's REST image bytes (c=1, 4), gRPC tensor and image bytes, the
                      bare LiteRT interpreter and ``LocalClient.predict`` on tensors and image bytes (single-stream);
4. parity: every format and transport on the validation split, against Keras;
5. goals: every performance goal of the project (``deepclf.bench.peers.goals``: REST/gRPC against KServe and the
   bare interpreter, server-side batching at c=8, ``LocalClient`` against the bare interpreter, server start time
   and memory) evaluated on this run's numbers, logged and written to ``peers_goals.json``; a goal whose suite was
   not run (``--suite``) is ``n/a``;
6. writes everything to ``docs/results/<host>-<date>/``, with the run's dated page ``index.md`` (the command, the
   machine, the tables and plots), and regenerates the list of runs in ``docs/results/index.md`` between its
   ``<!-- bench:runs:... -->`` markers (``make docs`` shows them).

Usage::

    python benchmarks/run.py                          # full suite (~15 min on 2 cores)
    python benchmarks/run.py --quick                  # 2 s per measurement, 100 parity images (~3 min)
    python benchmarks/run.py --runs demo-output/runs --models demo-output/models   # reuse make demo's models
    python benchmarks/run.py --suite peers --version-dir models/flowers/1   # only the peers, on a converted model
    python benchmarks/run.py --suite concurrency --suite peers --version-dir models/flowers/1 --quick  # all goals

A run of some suites (``--suite``) writes to ``<host>-<date>-<suites>/``, so it never replaces the day's full run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))  # run from a checkout without installing

from deepclf.bench.env import describe, environment
from deepclf.bench.latency import LatencyOptions, LatencyReport, run_latency, sample_images
from deepclf.bench.parity import ParityImages, ParityReport, run_parity
from deepclf.bench.peers import PEERS, PeerUnavailable, goals, launch, peer_python
from deepclf.bench.peers.target import PeerTarget
from deepclf.bench.plots import latency_plots
from deepclf.bench.process import free_port, log_tail, serve_command, stop_process
from deepclf.bench.report import fmt, human_bytes
from deepclf.bench.server_footprint import measure_server_footprint
from deepclf.clients import NO_RETRIES, RestClient
from deepclf.clients import TimeoutError as ClientTimeoutError
from deepclf.fsutil import atomic_write_json, atomic_write_text, publish_dir
from deepclf.manifest import TFLITE_FILES, Manifest
from deepclf.serving.config import default_interpreter_threads, default_threads

MODELS = ("augmented", "basic")
SUITES = ("formats", "wrapper", "serving", "concurrency", "parity", "peers")
#: The batching server's TF Serving BatchingParameters (``--batching_parameters_file``): batches of at most 8 rows
#: (the concurrency suite's most clients), padded to the allowed sizes so an interpreter sees 4 shapes only (no
#: re-allocation for every odd batch), and a short wait for company (1 ms) so a lone request is not held back long.
#: ``num_batch_threads`` is the server's default ``--threads`` (``default_threads()``, 1 on up to 4 CPUs): each batch
#: thread runs an interpreter with ``default_interpreter_threads()`` XNNPACK threads, and two on 2 cores fight for
#: them (measured on the 2-core machine, gRPC c=8: p99 79 ms with 2 batch threads, 49 with 1; ~265 req/s both).
BATCHING_PARAMETERS: dict[str, Any] = {
    "max_batch_size": 8,
    "batch_timeout_micros": 1000,
    "num_batch_threads": default_threads(),
    "max_enqueued_batches": 100,
    "allowed_batch_sizes": [1, 2, 4, 8],
}
#: Requests of the server-footprint mix before its RSS is read (the goal's "after 1,000 mixed requests").
FOOTPRINT_REQUESTS = 1000
#: Suites that need no Keras run: the ones ``--version-dir`` (a converted version folder alone) may run.
VERSION_DIR_SUITES = ("wrapper", "serving", "concurrency", "peers")
RESULTS = REPO / "docs" / "results"
MARK_START = "<!-- bench:runs:start -->"
MARK_END = "<!-- bench:runs:end -->"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def deepclf(*args: str, timeout: float | None = None) -> None:
    """Run a ``deepclf`` subcommand in a child process (its output streams through)."""
    cmd = [sys.executable, "-m", "deepclf.cli", *args]
    log("$ deepclf " + " ".join(args))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(cmd, check=True, timeout=timeout, env=env)


def find_data(given: str | None) -> Path | None:
    for cand in [
        given,
        os.environ.get("DEEPCLF_DATA"),
        REPO.parent / "shared" / "data" / "flower_photos",
        Path.home() / ".keras" / "datasets" / "flower_photos",
    ]:
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def latest_version(base: Path) -> Path | None:
    versions = (
        sorted((int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)
        if base.is_dir()
        else []
    )
    return base / str(versions[0]) if versions else None


def ensure_models(args: argparse.Namespace, data: Path | None) -> dict[str, tuple[Path, Path]]:
    """``{model: (run_dir, version_dir)}``, training and converting only what is missing."""
    out = {}
    for m in args.model:
        run = Path(args.runs) / m
        if not (run / "model.keras").is_file():
            if data is None:
                raise SystemExit(f"no trained {m} model in {run} and no data to train one: pass --data FOLDER")
            train = ["train", "--model", m, "--data", str(data), "--out", str(run)]
            if args.epochs:
                train += ["--epochs", str(args.epochs)]
            deepclf(*train)
        else:
            log(f"reusing the trained {m} model in {run}")
        base = Path(args.models) / f"flowers_{m}"
        version = latest_version(base)
        if version is None or not (version / "manifest.json").is_file():
            convert = ["convert", str(run), "--out", str(args.models), "--name", f"flowers_{m}"]
            if data is not None:
                convert += ["--data", str(data)]
            deepclf(*convert)
            version = latest_version(base)
        else:
            log(f"reusing the converted {m} model in {version}")
        assert version is not None
        out[m] = (run, version)
    return out


def batching_parameters_text(params: dict[str, Any]) -> str:
    """``BATCHING_PARAMETERS`` as TF Serving's text proto (wrapped scalars; ``allowed_batch_sizes`` repeated)."""
    lines = []
    for key, value in params.items():
        if isinstance(value, list):
            lines += [f"{key}: {v}" for v in value]
        else:
            lines.append(f"{key} {{ value: {value} }}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def edge_server(
    model: str,
    base: Path,
    *,
    batching: bool,
    threads: int | None,
    timeout: float = 120.0,
    access_log: bool = False,
) -> Iterator[dict[str, Any]]:
    """Start ``deepclf serve`` in a child process; yields its ports (``error`` set if it did not come up).

    ``batching``: ``--enable_batching`` with ``BATCHING_PARAMETERS`` in a ``--batching_parameters_file`` (kept in
    the yielded ``batching_parameters``). ``access_log``: keep the server's default access log (the peers suite
    compares default configurations).
    """
    grpc_port, rest_port = free_port(), free_port()
    cmd = serve_command(model, base, grpc_port, rest_port)
    if not access_log:
        cmd.append("--no_access_log")  # one JSON line per request would be benchmarked too
    params_file = HERE / f".batching-{rest_port}.pbtxt"
    if batching:
        atomic_write_text(params_file, batching_parameters_text(BATCHING_PARAMETERS))
        cmd += ["--enable_batching", "--batching_parameters_file", str(params_file)]
    if threads:
        cmd += ["--interpreter_threads", str(threads)]  # XNNPACK threads per interpreter, like the tflite targets
    info: dict[str, Any] = {
        "grpc": f"127.0.0.1:{grpc_port}",
        "rest": f"127.0.0.1:{rest_port}",
        "error": None,
        "batching": batching,
        "batching_parameters": dict(BATCHING_PARAMETERS) if batching else None,
        "command": " ".join(cmd[2:]),
    }
    log(f"starting edge server{' with batching' if batching else ''}: deepclf {' '.join(cmd[4:])}")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    logf = open(HERE / f".server-{rest_port}.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        with RestClient(f"http://{info['rest']}", timeout=2.0, retry=NO_RETRIES) as probe:
            while True:
                if proc.poll() is not None:
                    info["error"] = f"server exited with status {proc.returncode}: {log_tail(logf.name)}"
                    break
                try:
                    probe.wait_until_available(model, timeout=1.0, poll_interval=0.25)
                    break
                except ClientTimeoutError:  # not up yet: check that the process still lives, then ask again
                    pass
                if time.monotonic() > deadline:
                    info["error"] = f"server not AVAILABLE after {timeout:.0f} s: {log_tail(logf.name)}"
                    break
        if info["error"]:
            log(f"edge server unavailable ({info['error'][:300]}); served targets will be reported as failed")
        else:
            log(f"edge server up: gRPC {info['grpc']}, REST {info['rest']}")
        yield info
    finally:
        stop_process(proc)
        logf.close()
        with contextlib.suppress(OSError):
            os.unlink(logf.name)
        with contextlib.suppress(OSError):
            params_file.unlink()


def run_suites(
    args: argparse.Namespace, models: dict[str, tuple[Path, Path]], data: Path | None, out: Path
) -> dict[str, Any]:
    suites = set(args.suite)
    main = args.model[0]
    if args.version_dir:  # a given converted version folder: only the suites that need no Keras run
        run, version = Path(), Path(args.version_dir)
        served_name = "flowers"
    else:
        run, version = models[main]
        served_name = f"flowers_{main}"
    th = f"&threads={args.threads}" if args.threads else ""
    images = sample_images(data, n=8)  # real photos spread over the classes (synthetic JPEGs without data)
    dur = args.duration
    reports: dict[str, Any] = {}

    def latency(
        name: str, specs: list[Any], opts: LatencyOptions, these_images: list[bytes] | None = None
    ) -> LatencyReport:
        log(f"latency suite '{name}': {len(specs)} targets, scenarios {', '.join(opts.scenarios)}")
        rep = run_latency(
            specs,
            opts,
            images=these_images or images,
            threads=args.threads,
            on_target=lambda t: log(f"  {t.name}: {t.status}{' - ' + t.error if t.error else ''}"),
        )
        rep.write(out, prefix=name)
        reports[name] = rep
        return rep

    if "formats" in suites:
        latency(
            "formats",
            [f"keras:{run}", f"savedmodel:{version}"] + [f"tflite:{version}?variant={v}{th}" for v in TFLITE_FILES],
            LatencyOptions(scenarios=("single-stream", "offline"), duration=dur, batch_size=32, quiet=args.quiet),
        )
    if "wrapper" in suites:
        latency(
            "wrapper",
            [
                s
                for v in ("fp32", "int8")
                for s in (f"litert-raw:{version}?variant={v}{th}", f"tflite:{version}?variant={v}{th}")
            ],
            LatencyOptions(scenarios=("single-stream",), duration=dur, quiet=args.quiet),
        )

    if suites & {"serving", "concurrency", "parity"}:
        _served_suites(args, suites, models, data, out, version, served_name, latency, reports)
    if "peers" in suites:
        run_peers(args, out, version, served_name, latency, reports, photo=photo_320x240(data))
    if suites & {"peers", "concurrency"}:  # the suites the goals read; the others' goals are n/a
        write_goals(out, reports)

    parity_main = reports.get(f"parity_{main}")
    if "formats" in reports:
        latency_plots(reports["formats"], out, prefix="formats", parity=parity_main)
    if "concurrency" in reports:
        latency_plots(reports["concurrency"], out, prefix="concurrency", size_plot=False)
    if "serving" in reports:
        latency_plots(reports["serving"], out, prefix="serving", size_plot=False)
    if "peers" in reports:
        latency_plots(reports["peers"], out, prefix="peers", size_plot=False)
    return reports


def _served_suites(
    args: argparse.Namespace,
    suites: set[str],
    models: dict[str, tuple[Path, Path]],
    data: Path | None,
    out: Path,
    version: Path,
    served_name: str,
    latency: Callable[[str, list[Any], LatencyOptions], LatencyReport],
    reports: dict[str, Any],
) -> None:
    """The suites behind our edge servers: serving, concurrency, parity."""
    main = args.model[0]
    th = f"&threads={args.threads}" if args.threads else ""
    dur = args.duration
    with (
        edge_server(served_name, version.parent, batching=False, threads=args.threads) as plain,
        edge_server(served_name, version.parent, batching=True, threads=args.threads) as batched,
    ):
        g, r = plain["grpc"], plain["rest"]
        serving_specs = [
            f"tflite:{version}?variant=fp32{th}&name=in-process",
            f"grpc://{g}/{served_name}?name=grpc-tensor",
            f"grpc://{g}/{served_name}?send=bytes&name=grpc-bytes",
            f"rest://{r}/{served_name}?name=rest-tensor",
            f"rest://{r}/{served_name}?send=bytes&name=rest-bytes",
            f"rest://{r}/{served_name}?codec=stdlib&name=rest-tensor-stdlib-json",
        ]
        if "serving" in suites:
            latency(
                "serving",
                serving_specs,
                LatencyOptions(scenarios=("single-stream", "server"), duration=dur, rate=args.rate, quiet=args.quiet),
            )
        if "concurrency" in suites:
            latency(
                "concurrency",
                [
                    f"grpc://{g}/{served_name}?name=grpc-plain",
                    f"grpc://{batched['grpc']}/{served_name}?name=grpc-batching",
                    f"tflite:{version}?variant=fp32{th}&name=in-process",
                ],
                LatencyOptions(scenarios=("concurrency",), duration=dur, concurrency=(1, 2, 4, 8), quiet=args.quiet),
            )
        reports["servers"] = {"plain": plain, "batching": batched}

        if "parity" in suites and data is not None:
            log("parity: every format and transport against Keras, per model")
            pimgs = ParityImages.from_folder(data, limit=args.parity_limit)  # the same split for every model
            for m, (mrun, mversion) in models.items():
                specs = [f"keras:{mrun}", f"savedmodel:{mversion}"] + [
                    f"tflite:{mversion}?variant={v}" for v in TFLITE_FILES
                ]
                if m == main:
                    specs += [
                        f"grpc://{g}/{served_name}?name=grpc-tensor",
                        f"grpc://{g}/{served_name}?send=bytes&name=grpc-bytes",
                        f"rest://{r}/{served_name}?name=rest-tensor",
                        f"rest://{r}/{served_name}?send=bytes&name=rest-bytes",
                    ]
                rep = run_parity(specs, pimgs)
                rep.write(out, prefix=f"parity_{m}", plots=True)
                reports[f"parity_{m}"] = rep
                log(f"  parity {m}: {'PASS' if rep.passed else 'FAIL'}")
        elif "parity" in suites:
            log("parity skipped: no data folder (pass --data)")


def photo_320x240(data: Path | None) -> bytes:
    """A typical photo for the in-process image-bytes goal: the first 320x240 JPEG of the data folder (the second
    most common size of the flowers photos), else the synthetic 320x240 one (``sample_images``)."""
    if data is not None:
        from PIL import Image

        for path in sorted(Path(data).rglob("*.jpg")):
            with Image.open(path) as img:
                if img.size == (320, 240):
                    return path.read_bytes()
    return sample_images(None, n=1)[0]


def run_peers(
    args: argparse.Namespace,
    out: Path,
    version: Path,
    served_name: str,
    latency: Callable[..., LatencyReport],
    reports: dict[str, Any],
    *,
    photo: bytes,
) -> None:
    """Our server against its peers on the same fp32 ``.tflite``: REST row tensor, closed loop at 1 and 4 clients.

    Every server runs with its defaults (ours: ``deepclf serve`` as documented, access log on, interpreter
    threads ``default_interpreter_threads()``; KServe and uvicorn with their access logs) except the peers' LiteRT threads (``--peer-threads``,
    default 2, as a user of ``ai_edge_litert`` would set). One client for all three (``PeerTarget``: the bytes
    ``RestClient`` sends, encoded once per image and replayed over ``http.client``, like ``hey -D body.json``), so
    the requests and the client's work are identical and small.

    Before anything else (a quiet machine), our server's footprint (``deepclf.bench.server_footprint``): a fresh
    ``deepclf serve`` with default flags, spawn to AVAILABLE, and its RSS after 1,000 mixed requests.

    Then, with the peers stopped, the baselines of the performance goals (``deepclf.bench.peers.goals``): our
    server over REST image bytes (c=1 and 4, the same ``PeerTarget`` client) and gRPC tensor/image bytes
    (single-stream, ``deepclf.clients.GrpcClient``), the bare
    ``ai_edge_litert`` interpreter and ``LocalClient.predict`` on the tensor and on image bytes in process
    (single-stream, batch 1, our server's default interpreter threads). ``write_goals`` turns them into the goal
    table.
    """
    model_file = version / TFLITE_FILES["fp32"]
    h, w, _ = Manifest.load(version).input.shape
    python = peer_python(args.peers_python)
    info: dict[str, Any] = {"model_file": str(model_file), "python": python, "threads": args.peer_threads}
    # First, on a quiet machine: our server's start time and memory (default flags, 1,000 mixed requests).
    log(f"server footprint: deepclf serve (default flags) to AVAILABLE, then {FOOTPRINT_REQUESTS} mixed requests")
    fp = measure_server_footprint(version.parent, served_name, requests=FOOTPRINT_REQUESTS)
    reports["server_footprint"] = fp
    log(
        f"  start to AVAILABLE {fmt(fp.start_s)} s, RSS {fmt(fp.rss_mb)} MB after {fp.requests} requests"
        + (f" ({fp.errors} failed: {fp.error})" if fp.error else "")
    )
    stops = []
    with edge_server(served_name, version.parent, batching=False, threads=None, access_log=True) as ours:
        targets: list[Any] = [PeerTarget("deepclf", f"http://{ours['rest']}", served_name, input_size=(h, w))]
        info["deepclf"] = {"command": ours["command"], "error": ours["error"]}
        try:
            for kind in PEERS:
                try:
                    log(f"starting peer {kind} ({python}, {args.peer_threads} LiteRT threads)")
                    url, stop = launch(kind, model_file, served_name, args.peer_threads, python=python)
                except PeerUnavailable as exc:
                    log(str(exc))
                    info[kind] = {"skipped": str(exc)}
                    continue
                except RuntimeError as exc:  # did not come up: reported, the others still run
                    log(str(exc)[:300])
                    info[kind] = {"error": str(exc)[:1000]}
                    continue
                stops.append(stop)
                info[kind] = {"url": url}
                targets.append(PeerTarget(kind, url, served_name, input_size=(h, w)))
            latency(
                "peers",
                targets,
                LatencyOptions(
                    scenarios=("concurrency",),
                    duration=args.peers_duration or args.duration,
                    concurrency=(1, 4),
                    size=(h, w),
                    quiet=args.quiet,
                ),
            )
        finally:
            for stop in stops:
                stop()
        # What the goals compare against, with the peers stopped: our server's image-bytes and gRPC paths and the
        # bare interpreter, at the interpreter threads our server uses by default. Every image-bytes request sends
        # one typical photo (320x240, the issue's "one real photo"), so the goals compare like with like.
        n = default_interpreter_threads()
        info["bare_interpreter_threads"] = n
        g, r = ours["grpc"], ours["rest"]
        opts = {"duration": args.peers_duration or args.duration, "size": (h, w), "quiet": args.quiet}
        latency(
            "peers_base",
            [
                f"litert-raw:{version}?variant=fp32&threads={n}&name={goals.BARE}",
                f"grpc://{g}/{served_name}?name={goals.OURS_GRPC_TENSOR}",
                f"grpc://{g}/{served_name}?send=bytes&name={goals.OURS_GRPC_BYTES}",
            ],
            LatencyOptions(scenarios=("single-stream",), **opts),
            these_images=[photo],
        )
        # Both local paths on the photo too (the in-process goal is stated for a typical 320x240 photo).
        latency(
            "peers_local",
            [
                f"local:{version}?variant=fp32&threads={n}&name={goals.LOCAL_TENSOR}",
                f"local:{version}?variant=fp32&threads={n}&send=bytes&name={goals.LOCAL_BYTES}",
            ],
            LatencyOptions(scenarios=("single-stream",), **opts),
            these_images=[photo],
        )
        latency(
            "peers_bytes",
            # The load generator the row-tensor comparison uses (prebuilt bodies, http.client), as the issue's hey.
            [PeerTarget(goals.OURS_REST_BYTES, f"http://{r}", served_name, input_size=(h, w), send="bytes")],
            LatencyOptions(scenarios=("concurrency",), concurrency=(1, 4), **opts),
            these_images=[photo],
        )
    reports["peers_servers"] = info


def write_goals(out: Path, reports: dict[str, Any]) -> None:
    """Evaluate every performance goal on this run's numbers, log the table, keep it in ``reports["peers_goals"]``
    and write ``peers_goals.json`` (goals, the servers, the batching parameters, the server footprint).

    The numbers come from the peers suite (``peers``, ``peers_base``, ``peers_local``, ``peers_bytes``,
    ``server_footprint``) and the
    concurrency suite (``grpc-plain``/``grpc-batching`` at c=8); a goal whose suite did not run is ``n/a``.
    """
    values = goals.measurements(
        reports.get("peers"),
        reports.get("peers_base"),
        reports.get("peers_local"),
        reports.get("peers_bytes"),
        reports.get("concurrency"),
    )
    footprint = reports.get("server_footprint")
    if footprint is not None:
        values.update(footprint.measurements())
    rows = goals.evaluate_goals(values)
    reports["peers_goals"] = rows
    batching = (reports.get("servers") or {}).get("batching") or {}
    atomic_write_json(
        out / "peers_goals.json",
        {
            "goals": [row.to_dict() for row in rows],
            "servers": reports.get("peers_servers"),
            "batching_parameters": batching.get("batching_parameters"),
            "server_footprint": footprint.to_dict() if footprint is not None else None,
        },
    )
    log("performance goals:\n" + goals.goals_markdown(rows))


# -- summary tables ------------------------------------------------------------------------------------------------


def _ss(rep: LatencyReport, scenario: str = "single-stream") -> dict[str, Any]:
    out = {}
    for t in rep.targets:
        r = next((x for x in t.results if x.scenario == scenario), None)
        out[t.name] = (t, r)
    return out


def _concurrency_rows(report: Any) -> list[list[Any]]:
    """One row per target and concurrency level (target, concurrency, req/s, p50, p99, errors); a failed target
    gets a row saying why."""
    rows: list[list[Any]] = []
    for t in report.targets:
        for r in t.results:
            rows.append([t.name, r.concurrency, r.throughput_rps, r.latency.p50, r.latency.p99, r.errors])
        if t.status != "ok":
            rows.append([t.name, "-", None, None, None, f"failed: {t.error}"[:80]])
    return rows


def _md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown(reports: dict[str, Any], env: dict[str, Any], rel: str, args: argparse.Namespace) -> str:
    """The tables of a run's page (plots linked relative to ``rel``, the run's folder as the page sees it)."""
    parts = [
        f"Machine: {describe(env)}; started {env['date']}.",
        f"Settings: {args.duration:g} s per measurement, warm-up excluded, LiteRT threads "
        f"{args.threads or 'default'}, server-scenario rate {args.rate:g}/s, sample images 320x240-ish JPEGs "
        "from the data folder.",
        "",
    ]

    fm = reports.get("formats")
    if fm:
        par = reports.get(f"parity_{args.model[0]}")
        acc = {t.name: t.accuracy for t in par.targets} if par else {}
        rows = []
        for name, (t, ss) in _ss(fm).items():
            off = next((x for x in t.results if x.scenario == "offline"), None)
            rows.append(
                [
                    name,
                    human_bytes(t.info.get("model_bytes")),
                    ss.latency.p50 if ss else None,
                    ss.latency.p90 if ss else None,
                    ss.latency.p99 if ss else None,
                    off.throughput_ips if off else None,
                    acc.get(name),
                    t.status if t.status != "ok" else "ok",
                ]
            )
        parts += [
            "## Formats in process (single-stream latency in ms, offline batch-32 throughput)",
            "",
            _md_table(["target", "size", "p50", "p90", "p99", "offline img/s", "top-1", "status"], rows),
            "",
            f"![size vs latency vs accuracy]({rel}/size_latency_accuracy.png) "
            f"![latency distribution]({rel}/formats_distribution.png)",
            "",
        ]
    wr = reports.get("wrapper")
    if wr:
        ss = _ss(wr)
        rows = []
        for v in ("fp32", "int8"):
            raw = next((r for n, (t, r) in ss.items() if n.startswith(f"litert-raw-{v}")), None)
            ours = next((r for n, (t, r) in ss.items() if n.startswith(f"tflite-{v}")), None)
            if raw and ours and raw.count and ours.count:
                rows.append(
                    [
                        v,
                        raw.latency.p50,
                        ours.latency.p50,
                        (ours.latency.p50 - raw.latency.p50) * 1000,
                        raw.latency.p99,
                        ours.latency.p99,
                    ]
                )
        parts += [
            "## Wrapper overhead: bare LiteRT interpreter loop vs `deepclf.runtime` (ms; overhead in us)",
            "",
            _md_table(["variant", "raw p50", "runtime p50", "overhead p50 (us)", "raw p99", "runtime p99"], rows),
            "",
        ]
    sv = reports.get("serving")
    if sv:
        ss = _ss(sv)
        base = ss.get("in-process", (None, None))[1]
        srv = _ss(sv, "server")
        rows = []
        for name, (t, r) in ss.items():
            s2 = srv.get(name, (None, None))[1]
            ok = r is not None and r.count > 0
            rows.append(
                [
                    name,
                    r.latency.p50 if ok else None,
                    r.latency.p99 if ok else None,
                    (r.latency.p50 - base.latency.p50) if ok and base and base.count else None,
                    (r.latency.p99 - base.latency.p99) if ok and base and base.count else None,
                    s2.latency.p99 if s2 and s2.count else None,
                    s2.achieved_rate if s2 else None,
                    r.client_cpu if ok else None,
                    "ok" if t.status == "ok" else f"failed: {t.error}"[:80],
                ]
            )
        parts += [
            "## Serving overhead: in-process vs the edge server (ms)",
            "",
            _md_table(
                [
                    "target",
                    "p50",
                    "p99",
                    "+p50 vs in-process",
                    "+p99 vs in-process",
                    f"server-scenario p99 @{args.rate:g}/s",
                    "achieved/s",
                    "client cpu",
                    "status",
                ],
                rows,
            ),
            "",
            f"![serving latency]({rel}/serving_distribution.png)",
            "",
        ]
    cc = reports.get("concurrency")
    if cc:
        rows = _concurrency_rows(cc)
        parts += [
            "## Throughput against concurrency (closed loop, gRPC tensor; batching server vs plain)",
            "",
            _md_table(["target", "concurrency", "req/s", "p50 ms", "p99 ms", "errors"], rows),
            "",
            f"![concurrency]({rel}/concurrency_concurrency.png)",
            "",
        ]
    pr = reports.get("peers")
    if pr:
        rows = _concurrency_rows(pr)
        skipped = [
            v["skipped"] for v in reports.get("peers_servers", {}).values() if isinstance(v, dict) and "skipped" in v
        ]
        parts += [
            "## Peers: our server vs KServe vs FastAPI on the same .tflite (REST row tensor, closed loop)",
            "",
            _md_table(["server", "concurrency", "req/s", "p50 ms", "p99 ms", "errors"], rows),
            "",
            *[f"{line}  " for line in skipped],
            f"![peers]({rel}/peers_concurrency.png) ![peers latency distribution]({rel}/peers_distribution.png)",
            "",
        ]
    gr = reports.get("peers_goals")
    if gr:
        rows = []
        for name in ("peers_base", "peers_local", "peers_bytes"):
            rep = reports.get(name)
            for t in rep.targets if rep else []:
                for r in t.results:
                    rows.append([t.name, r.scenario, r.concurrency, r.throughput_rps, r.latency.p50, r.latency.p99])
                if t.status != "ok":
                    rows.append([t.name, "-", "-", None, None, f"failed: {t.error}"[:80]])
        threads = (reports.get("peers_servers") or {}).get("bare_interpreter_threads")
        notes = []
        fp = reports.get("server_footprint")
        if fp is not None:
            notes.append(
                f"Server footprint (`{' '.join(fp.command[:2])}` with default flags, fp32): start to AVAILABLE "
                f"{fmt(fp.start_s)} s; RSS {fmt(fp.rss_available_mb)} MB when AVAILABLE, {fmt(fp.rss_mb)} MB after "
                f"{fp.requests} mixed requests ({', '.join(f'{k} {v}' for k, v in fp.mix.items())}), peak "
                f"{fmt(fp.peak_rss_mb)} MB" + (f"; {fp.errors} failed: {fp.error}" if fp.error else "") + "."
            )
        batching = ((reports.get("servers") or {}).get("batching") or {}).get("batching_parameters")
        if batching:
            notes.append(
                "Batching server (concurrency suite): "
                + ", ".join(f"{k} {'/'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in batching.items())
                + "."
            )
        parts += [
            f"## Performance goals (same run; bare interpreter: `ai_edge_litert`, {threads or '-'} threads, batch 1)",
            "",
            *(
                [_md_table(["target", "scenario", "concurrency", "req/s", "p50 ms", "p99 ms"], rows), ""]
                if rows
                else []
            ),
            *[f"{line}  " for line in notes],
            *([""] if notes else []),
            goals.goals_markdown(gr),
            "",
        ]
    for key, rep in reports.items():
        if key.startswith("parity_") and isinstance(rep, ParityReport):
            rows = [
                [
                    t.name,
                    t.kind,
                    t.accuracy,
                    t.accuracy_delta,
                    t.agreement,
                    None if t.max_abs_diff is None else f"{t.max_abs_diff:.1e}",
                    t.compared_with or "-",
                    "FAILED: " + (t.error or "")[:60]
                    if t.status != "ok"
                    else ("ref" if t.passed is None else ("pass" if t.passed else "FAIL")),
                ]
                for t in rep.targets
            ]
            parts += [
                f"## Accuracy parity, {key[7:]} model ({rep.images['count']} validation images)",
                "",
                _md_table(["target", "kind", "top-1", "d top-1", "agreement", "max abs dp", "vs", "verdict"], rows),
                "",
            ]
    return "\n".join(parts)


def run_page(section: str, env: dict[str, Any], argv: list[str], folder: str) -> str:
    """A run's dated page: the date, the command that made it, then its tables."""
    command = " ".join(["python benchmarks/run.py", *argv])
    return f"# {str(env['date'])[:10]}: benchmark run `{folder}`\n\n```sh\n{command}\n```\n\n{section.rstrip()}\n"


def runs_list(root: Path) -> str:
    """One line per run of this script under ``root`` (``<run>/index.md`` beside its ``settings.json``), newest
    first by the date its title starts with."""
    runs = []
    for page in root.glob("*/index.md"):
        if not (page.parent / "settings.json").is_file():
            continue
        title = page.read_text(encoding="utf-8").partition("\n")[0].removeprefix("# ").strip()
        runs.append((title, f"- [{title}]({page.parent.name}/index.md)"))
    return "\n".join(line for _, line in sorted(runs, reverse=True))


def update_marked(path: Path, block_text: str) -> None:
    """Replace the text between the markers of ``path`` (append the markers if it has none)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = f"{MARK_START}\n{block_text.rstrip()}\n{MARK_END}"
    if MARK_START in text and MARK_END in text:
        text = re.sub(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="flower_photos folder (default: DEEPCLF_DATA, ../shared/data, cache)")
    p.add_argument("--runs", default=str(HERE / "work" / "runs"), help="training run folders (reused if present)")
    p.add_argument("--models", default=str(HERE / "work" / "models"), help="models folder (reused if present)")
    p.add_argument(
        "--model",
        action="append",
        choices=MODELS,
        default=None,
        help="which models (default: augmented, basic); the first is the one served and swept",
    )
    p.add_argument("--epochs", type=int, default=None, help="training epochs when a model must be trained")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    p.add_argument("--rate", type=float, default=20.0, help="server-scenario arrival rate (default 20/s)")
    p.add_argument("--threads", type=int, default=None, help="LiteRT threads (default: LiteRT's)")
    p.add_argument("--parity-limit", type=int, default=None, help="at most N validation images for parity")
    p.add_argument("--quick", action="store_true", help="2 s per measurement and 100 parity images")
    p.add_argument("--out", default=str(RESULTS), help="results root (default docs/results)")
    p.add_argument("--no-index", action="store_true", help="do not rewrite the list of runs in <out>/index.md")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--suite",
        action="append",
        choices=SUITES,
        default=None,
        help="run only this suite (repeatable; default: all). A partial run gets a folder of its own",
    )
    p.add_argument(
        "--version-dir",
        default=None,
        help="a converted model version folder (manifest.json, model.tflite) to measure instead of training and "
        f"converting; only with suites that need no Keras run ({', '.join(VERSION_DIR_SUITES)})",
    )
    p.add_argument(
        "--peers-python",
        default=None,
        help="Python with the peers' packages (default: $DEEPCLF_PEERS_PYTHON, else .venv-peers/bin/python, else "
        "this one); `make peers-venv` makes .venv-peers",
    )
    p.add_argument("--peer-threads", type=int, default=2, help="LiteRT threads of the peer servers (default 2)")
    p.add_argument(
        "--peers-duration", type=float, default=None, help="seconds per peers measurement (default: --duration)"
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    args.model = list(dict.fromkeys(args.model or MODELS))
    args.suite = list(dict.fromkeys(args.suite or SUITES))
    partial = set(args.suite) != set(SUITES)
    if args.version_dir and not set(args.suite) <= set(VERSION_DIR_SUITES):
        p.error(
            "--version-dir measures a converted model without its Keras run: use it with --suite "
            + " / ".join(VERSION_DIR_SUITES)
            + " only"
        )
    if args.quick:
        args.duration = min(args.duration, 2.0)
        args.parity_limit = args.parity_limit or 100

    env = environment()
    stamp = _dt.datetime.now().strftime("%Y%m%d")
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", env["host"]) or "host"
    # A partial run gets its own folder: publishing it must not replace the day's full results.
    out = Path(args.out) / (f"{host}-{stamp}" + ("-" + "-".join(args.suite) if partial else ""))
    data = find_data(args.data)
    log(f"environment: {describe(env)}")
    log(f"data: {data or '(none: parity skipped unless models must be trained)'}")
    t0 = time.perf_counter()
    models = {} if args.version_dir else ensure_models(args, data)
    # Publish the whole results folder in one rename: a re-run the same day replaces it only once complete.
    with publish_dir(out, overwrite=True) as tmp_out:
        reports = run_suites(args, models, data, tmp_out)
        env["bench_seconds"] = time.perf_counter() - t0
        atomic_write_json(tmp_out / "environment.json", env)
        atomic_write_json(
            tmp_out / "settings.json",
            {
                **vars(args),
                "models": {m: [str(r), str(v)] for m, (r, v) in models.items()},
                "servers": reports.get("servers"),
            },
        )
    section = summary_markdown(reports, env, ".", args)
    atomic_write_text(out / "index.md", run_page(section, env, argv, out.name))
    if not args.no_index:
        update_marked(out.parent / "index.md", runs_list(out.parent))
        log(f"updated {out.parent / 'index.md'}")
    log(f"results in {out} ({time.perf_counter() - t0:.0f} s)")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
