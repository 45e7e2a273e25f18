"""Start a peer server as a child process on a free loopback port, wait until it answers, stop it with SIGTERM.

Standard library only: this module decides whether a peer can run at all, before any peer dependency is imported::

    url, stop = launch("kserve", "models/flowers/1/model.tflite", "flowers", threads=2)
    try:
        ...                                   # POST {url}/v1/models/flowers:predict
    finally:
        stop()

KServe pins ``protobuf<7`` and ``psutil<6``, against deepclf's ``protobuf>=7.36`` and the bench extra's
``psutil>=7.2``, so the peers normally run from their own virtual environment (``make peers-venv``:
``.venv-peers`` with ``pip install -e '.[peers]'``). ``python`` picks its interpreter: the argument, else
``$DEEPCLF_PEERS_PYTHON``, else the checkout's ``.venv-peers/bin/python`` when there is one, else this Python.
The child gets this checkout's ``src`` on ``PYTHONPATH``, so deepclf need not be installed there.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from deepclf.bench.process import free_port, log_tail, stop_process

#: Peer kinds and the modules each needs in the peer's Python (LiteRT and numpy for the model itself).
PEERS: dict[str, tuple[str, ...]] = {
    "kserve": ("kserve", "ai_edge_litert", "numpy"),
    "fastapi": ("fastapi", "uvicorn", "ai_edge_litert", "numpy"),
}
PYTHON_ENV = "DEEPCLF_PEERS_PYTHON"
_SRC = Path(__file__).resolve().parents[3]  # .../src, the folder holding the deepclf package
_CHECKOUT_VENV = _SRC.parent / ".venv-peers" / "bin" / "python"


class PeerUnavailable(RuntimeError):
    """The peer's packages are not installed in its Python; the message is the one line to report."""


def peer_python(python: str | os.PathLike[str] | None = None) -> str:
    """The interpreter peers run with (see the module docstring)."""
    if python:
        return str(python)
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    if _CHECKOUT_VENV.is_file():
        return str(_CHECKOUT_VENV)
    return sys.executable


def missing_modules(kind: str, python: str | os.PathLike[str] | None = None) -> list[str]:
    """The modules ``kind`` needs that ``python`` cannot import (found with ``find_spec``, nothing imported)."""
    if kind not in PEERS:
        raise ValueError(f"unknown peer {kind!r}; expected one of {', '.join(PEERS)}")
    code = "import importlib.util as u, sys\nprint(' '.join(m for m in sys.argv[1:] if u.find_spec(m) is None))"
    try:
        res = subprocess.run(
            [peer_python(python), "-c", code, *PEERS[kind]], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:  # the named interpreter does not exist
        return list(PEERS[kind])
    return res.stdout.split() if res.returncode == 0 else list(PEERS[kind])


def skip_reason(kind: str, python: str | os.PathLike[str] | None = None) -> str | None:
    """``None`` when ``kind`` can run, else the one line that says why not and what to install."""
    missing = missing_modules(kind, python)
    if not missing:
        return None
    return (
        f"peer {kind} skipped: `pip install '.[peers]'` ({', '.join(missing)} not installed in {peer_python(python)})"
    )


def _ready(url: str, name: str) -> bool:
    """Whether ``GET /v1/models/<name>`` answers ``"ready": true`` (both peers' readiness route)."""
    try:
        with urllib.request.urlopen(f"{url}/v1/models/{name}", timeout=2.0) as r:  # noqa: S310 - our own http URL
            return bool(json.loads(r.read()).get("ready"))
    except (OSError, ValueError, AttributeError):  # not listening yet, or not the answer yet
        return False


def launch(
    kind: str,
    model_file: str | os.PathLike[str],
    name: str = "flowers",
    threads: int = 2,
    *,
    python: str | os.PathLike[str] | None = None,
    port: int | None = None,
    timeout: float = 90.0,
    log_file: str | os.PathLike[str] | None = None,
) -> tuple[str, Callable[[], None]]:
    """Start peer ``kind`` serving ``model_file`` as ``name``; returns its base URL and a ``stop()`` function.

    Raises ``PeerUnavailable`` (one line) when its packages are missing, ``RuntimeError`` with the log's tail when
    it exits or is not ready within ``timeout`` seconds. Its output (access logs included) goes to ``log_file``,
    by default a temporary file removed by ``stop()``.
    """
    reason = skip_reason(kind, python)
    if reason:
        raise PeerUnavailable(reason)
    port = port or free_port()
    cmd = [
        peer_python(python),
        "-m",
        f"deepclf.bench.peers.{kind}_peer",
        "--model-file",
        str(model_file),
        "--name",
        name,
        "--port",
        str(port),
        "--threads",
        str(threads),
    ]
    env = {**os.environ, "PYTHONPATH": str(_SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    own_log = log_file is None
    log_path = Path(log_file) if log_file else Path(tempfile.mkstemp(prefix=f"peer-{kind}-", suffix=".log")[1])
    log = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        stop_process(proc, timeout=20.0)  # both servers shut down gracefully on SIGTERM
        log.close()
        if own_log:
            with contextlib.suppress(OSError):
                log_path.unlink()

    deadline = time.monotonic() + timeout
    while not _ready(url, name):
        if proc.poll() is not None or time.monotonic() > deadline:
            why = f"exited with status {proc.returncode}" if proc.poll() is not None else f"not ready in {timeout:g} s"
            tail = log_tail(log_path, 800)
            stop()
            raise RuntimeError(f"peer {kind} {why}: {tail}")
        time.sleep(0.2)
    return url, stop
