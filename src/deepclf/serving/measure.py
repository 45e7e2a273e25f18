"""Measure the edge server as a process: time from launch to AVAILABLE and resident memory (RSS).

::

    python -m deepclf.serving.measure models/flowers --formats fp32 int8 --requests 200

For each format it launches ``deepclf serve`` (ports 0), waits for ``/readyz``, records the time from ``Popen`` to
ready and the server's RSS, sends ``--requests`` single-image REST predicts (random pixels at the manifest's input
size), records RSS again, stops it with SIGTERM and checks it exited 0. Prints one Markdown table. RSS is read
from ``/proc/PID/status`` on Linux, from psutil elsewhere (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deepclf.variants import VARIANT_NAMES

ADDRESS = re.compile(r"REST on (http://\S+);")


def proc_status_bytes(pid: int, field_name: str = "VmRSS") -> int | None:
    """A memory field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``, ...) in bytes; ``None`` without /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):  # "VmRSS:    123456 kB" (kB are KiB)
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes: ``VmRSS`` from ``/proc/PID/status`` on Linux, else psutil."""
    found = proc_status_bytes(pid)
    if found is not None:
        return found
    try:
        import psutil  # only where /proc is missing (macOS, Windows)
    except ImportError as exc:
        from deepclf.errors import MissingDependencyError

        raise MissingDependencyError("psutil", "bench", "reading a process's memory without /proc") from exc
    return int(psutil.Process(pid).memory_info().rss)


def measure(base: Path, fmt: str, requests_n: int, threads: int) -> dict[str, Any]:
    """Launch, wait for readiness, load it a little, stop; returns the numbers for one format."""
    import httpx
    import numpy as np

    from deepclf import protocol as P
    from deepclf.manifest import Manifest
    from deepclf.runtime.loader import resolve_model_path

    size = Manifest.load(resolve_model_path(base)).input.shape
    cmd = [
        sys.executable,
        "-m",
        "deepclf.cli",
        "serve",
        "--model_base_path",
        str(base),
        "--port",
        "0",
        "--rest_api_port",
        "0",
        "--format",
        fmt,
        "--threads",
        str(threads),
        "--no_access_log",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    )
    assert proc.stdout is not None and proc.stderr is not None  # both are PIPEs
    try:
        line = proc.stdout.readline()
        m = ADDRESS.search(line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()[-2000:]}")
        url = m.group(1)
        with httpx.Client() as s:
            while s.get(url + "/readyz", timeout=5).status_code != 200:
                time.sleep(0.01)
            ready_s = time.perf_counter() - t0
            rss_ready = rss_bytes(proc.pid)
            body = P.encode_predict_request(
                {"image": np.random.default_rng(0).uniform(0, 255, (1, *size)).astype(np.float32)}
            )
            for _ in range(requests_n):
                s.post(url + "/v1/models/" + base.name + ":predict", content=body, timeout=30).raise_for_status()
        rss_loaded = rss_bytes(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    return {
        "format": fmt,
        "ready_s": ready_s,
        "rss_ready_mib": rss_ready / 2**20,
        "rss_after_mib": rss_loaded / 2**20,
        "exit": proc.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="model base path (<base>/<version>/)")
    parser.add_argument("--formats", nargs="+", default=list(VARIANT_NAMES))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print("| format | launch to AVAILABLE (s) | RSS when ready (MiB) | RSS after requests (MiB) | exit on SIGTERM |")
    print("|---|---|---|---|---|")
    for fmt in args.formats:
        r = measure(args.base, fmt, args.requests, args.threads)
        print(
            f"| {fmt} | {r['ready_s']:.2f} | {r['rss_ready_mib']:.0f} | {r['rss_after_mib']:.0f} | {r['exit']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
