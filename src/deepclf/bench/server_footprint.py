"""Our server's footprint: time from spawn to AVAILABLE and resident memory after a mix of requests.

What the performance goals ``server_start`` and ``server_rss`` (``deepclf.bench.peers.goals``) judge::

    fp = measure_server_footprint("models/flowers", "flowers")     # deepclf serve, default flags
    fp.start_s, fp.rss_mb                                          # e.g. 1.2, 131.0
    values = fp.measurements()     # {("deepclf-serve", 0, "start_s"): 1.2, ("deepclf-serve", 0, "rss_mb"): 131.0}

``deepclf serve`` runs with its default flags (access log on, default threads, fp32 ``.tflite``) on two free
loopback ports. ``start_s`` is from ``Popen`` to the first ``GET /v1/models/<name>`` that reports a version
AVAILABLE (polled every 10 ms; it includes the interpreter start and the imports, which is what a user waits for).
Then ``requests`` requests (1,000 by default) cycle through the mix a deployment sees: REST row tensor, REST b64
image, gRPC tensor, gRPC image bytes, and metadata/status (REST and gRPC, alternately); ``rss_mb`` is ``VmRSS`` of
the server process read from ``/proc/<pid>/status`` after the last one, in MB of 10^6 bytes (``None`` where
there is no ``/proc``). No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.bench.peers.goals import NO_LOAD, SERVER, Key
from deepclf.bench.process import free_port, log_tail, serve_command, stop_process, wait_available
from deepclf.serving.measure import proc_status_bytes

#: The request kinds of the mix, in the order they are cycled through.
MIX = ("rest_tensor", "rest_bytes", "grpc_tensor", "grpc_bytes", "metadata_status")
MB = 1_000_000


@dataclass(frozen=True)
class ServerFootprint:
    """One measurement of ``deepclf serve``: start time, memory, and what was sent (``error`` if it failed)."""

    command: list[str]
    start_s: float | None = None
    rss_mb: float | None = None  # VmRSS after the requests
    rss_available_mb: float | None = None  # VmRSS when the model became AVAILABLE
    peak_rss_mb: float | None = None  # VmHWM at the end: the most the process ever held resident
    requests: int = 0
    mix: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    error: str | None = None

    def measurements(self) -> dict[Key, float]:
        """The goal table's keys: ``(SERVER, 0, "start_s")`` and ``(SERVER, 0, "rss_mb")``, where measured."""
        out: dict[Key, float] = {}
        if self.start_s is not None:
            out[(SERVER, NO_LOAD, "start_s")] = self.start_s
        if self.rss_mb is not None and self.error is None and not self.errors:
            # memory after failed requests is not the memory after 1,000 served ones: no number then (n/a)
            out[(SERVER, NO_LOAD, "rss_mb")] = self.rss_mb
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def proc_status_mb(pid: int, field_name: str = "VmRSS") -> float | None:
    """``field_name`` (``VmRSS``, ``VmHWM``...) of ``/proc/<pid>/status`` in MB (10^6 bytes); ``None`` without /proc."""
    found = proc_status_bytes(pid, field_name)
    return None if found is None else found / MB


def _request_mix(rest: str, grpc: str, model: str, image: bytes) -> tuple[list[Callable[[], Any]], Callable[[], None]]:
    """One callable per ``MIX`` kind, and what closes their clients (no retries: a failed request counts once).

    One REST metadata request first learns the model's input size (not counted in the mix)."""
    from deepclf.clients import NO_RETRIES, GrpcClient, RestClient
    from deepclf.manifest import INPUT_BYTES, SIGNATURE_BYTES
    from deepclf.preprocessing import preprocess

    rc = RestClient(f"http://{rest}", timeout=30.0, retry=NO_RETRIES)
    gc = GrpcClient(grpc, timeout=30.0, retry=NO_RETRIES)
    size = rc.metadata(model).input_size()
    tensor = preprocess(image, size)[None].astype(np.float32)
    image_in = {INPUT_BYTES: np.asarray([image], dtype=object)}
    meta_turn = [0]

    def metadata_status() -> Any:
        # alternate the four cheap calls: REST status/metadata, gRPC status/metadata (refresh: no client cache)
        meta_turn[0] += 1
        client: Any = rc if meta_turn[0] % 2 else gc
        if meta_turn[0] % 4 < 2:
            return client.status(model)
        return client.metadata(model, refresh=True)

    calls: list[Callable[[], Any]] = [
        lambda: rc.predict(tensor, model=model),
        lambda: rc.predict(image_in, model=model, signature=SIGNATURE_BYTES),
        lambda: gc.predict(tensor, model=model),
        lambda: gc.predict(image_in, model=model, signature=SIGNATURE_BYTES),
        metadata_status,
    ]

    def close() -> None:
        rc.close()
        gc.close()

    return calls, close


def measure_server_footprint(
    base_path: str | os.PathLike[str],
    model: str,
    *,
    requests: int = 1000,
    image: bytes | None = None,
    python: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 120.0,
    poll_interval: float = 0.01,
) -> ServerFootprint:
    """Spawn ``deepclf serve --model_name MODEL --model_base_path BASE_PATH`` (plus ``extra_args``; nothing else
    but the two ports), time it to AVAILABLE, send ``requests`` mixed requests, read its RSS, stop it.

    ``image``: the encoded image of the image-bytes requests (default: a synthetic 320x240 photo-like JPEG).
    Never raises for a server that does not come up or a failed request: ``error``/``errors`` say so, and the
    numbers that were not measured are ``None``.
    """
    if image is None:
        from deepclf.bench.latency import sample_images

        image = sample_images(n=1)[0]
    grpc_port, rest_port = free_port(), free_port()
    cmd = serve_command(model, base_path, grpc_port, rest_port, *extra_args, python=python)
    src = str(Path(__file__).resolve().parents[2])  # the checkout's src/, as benchmarks/run.py runs from it
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    shown = ["deepclf", *cmd[3:]]
    with tempfile.TemporaryDirectory(prefix="deepclf-footprint-") as tmp:
        log_path = Path(tmp) / "server.log"
        # The access log is on (default flags): a file, not a pipe nobody reads, which would block the server.
        with open(log_path, "wb") as logf:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
            try:
                return _measure(
                    proc, t0, shown, rest_port, grpc_port, model, image, requests, timeout, poll_interval, log_path
                )
            finally:
                stop_process(proc)


def _measure(
    proc: subprocess.Popen[bytes],
    t0: float,
    shown: list[str],
    rest_port: int,
    grpc_port: int,
    model: str,
    image: bytes,
    requests: int,
    timeout: float,
    poll_interval: float,
    log_path: Path,
) -> ServerFootprint:
    error = wait_available(proc, rest_port, model, timeout=timeout, poll_interval=poll_interval)  # t0: just now
    if error is not None:
        return ServerFootprint(shown, error=f"{error}: {log_tail(log_path)}")
    start_s = time.perf_counter() - t0
    rss_available = proc_status_mb(proc.pid)
    try:
        calls, close = _request_mix(f"127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", model, image)
    except Exception as exc:  # noqa: BLE001 - reported in the results; the start time still stands
        return ServerFootprint(shown, start_s=start_s, rss_available_mb=rss_available, error=f"clients: {exc}"[:500])
    mix = dict.fromkeys(MIX, 0)
    errors, first_error = 0, None
    try:
        for i in range(requests):
            kind = i % len(MIX)
            mix[MIX[kind]] += 1
            try:
                calls[kind]()
            except Exception as exc:  # noqa: BLE001 - counted; the RSS after failed requests is not reported
                errors += 1
                first_error = first_error or f"{MIX[kind]}: {exc}"[:500]
    finally:
        with contextlib.suppress(Exception):
            close()
    return ServerFootprint(
        shown,
        start_s=start_s,
        rss_mb=proc_status_mb(proc.pid),
        rss_available_mb=rss_available,
        peak_rss_mb=proc_status_mb(proc.pid, "VmHWM"),
        requests=requests,
        mix=mix,
        errors=errors,
        error=first_error,
    )
