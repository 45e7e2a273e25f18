"""Servers as child processes, for the benchmarks: a free port, the ``deepclf serve`` command line, whether a model
is AVAILABLE (and waiting until it is), the tail of a log, and a stop that always ends the process. TF-free (standard library only)::

    grpc_port, rest_port = free_port(), free_port()
    proc = subprocess.Popen(serve_command("flowers", "models/flowers", grpc_port, rest_port), env=env)
    error = wait_available(proc, rest_port, "flowers", timeout=60)   # None once AVAILABLE, else why not
    ...
    stop_process(proc)
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port free on the loopback interface now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(
    model: str,
    base_path: str | os.PathLike[str],
    grpc_port: int,
    rest_port: int,
    *flags: str,
    python: str | None = None,
) -> list[str]:
    """``deepclf serve`` for ``model`` in ``base_path`` on the two ports, with any extra ``flags``, run by
    ``python`` (default: this one)."""
    return [
        python or sys.executable,
        "-m",
        "deepclf.cli",
        "serve",
        "--model_name",
        model,
        "--model_base_path",
        str(base_path),
        "--port",
        str(grpc_port),
        "--rest_api_port",
        str(rest_port),
        *flags,
    ]


def model_available(rest_port: int, model: str, *, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """One ``GET /v1/models/<model>``: whether a version is AVAILABLE (``False`` while nothing listens yet)."""
    conn = http.client.HTTPConnection(host, rest_port, timeout=timeout)
    try:
        conn.request("GET", f"/v1/models/{model}")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return False
        versions = json.loads(body).get("model_version_status", [])
        return any(v.get("state") == "AVAILABLE" for v in versions)
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        conn.close()


def wait_available(
    proc: subprocess.Popen, rest_port: int, model: str, *, timeout: float, poll_interval: float = 0.05
) -> str | None:
    """Poll ``model_available`` until ``model`` is AVAILABLE on the server ``proc`` runs: ``None`` then, else why
    not (the process exited, or ``timeout`` seconds passed), for the caller's error."""
    deadline = time.monotonic() + timeout
    while not model_available(rest_port, model):
        if proc.poll() is not None:
            return f"server exited with status {proc.returncode}"
        if time.monotonic() > deadline:
            return f"not AVAILABLE after {timeout:g} s"
        time.sleep(poll_interval)
    return None


def log_tail(path: str | os.PathLike[str], n: int = 600) -> str:
    """The last ``n`` characters of a log file on one line (``" | "`` between lines), for an error message."""
    try:
        return Path(path).read_text(errors="replace")[-n:].strip().replace("\n", " | ")
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM (a graceful drain for ``deepclf serve`` and the peers), then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
