"""``deepclf serve`` as a child process for the tests that measure it from outside (its RSS, its behaviour under
load): started through ``serve_driver.py`` (TensorFlow blocked), stopped with SIGTERM, and checked to have exited
cleanly::

    with child_server(["--model_name=flowers", ...], tmp_path / "serve.stderr") as (proc, grpc_target, rest_url):
        ...
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DRIVER = Path(__file__).with_name("serve_driver.py")
REPO = Path(__file__).resolve().parents[2]
ADDRESS = re.compile(r"gRPC on (\S+), REST on (http://\S+);")


@contextmanager
def child_server(args: Sequence[str], stderr_path: Path) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """The server with ``args`` (``deepclf serve`` flags), its stderr (the access log) in a file so that no pipe
    fills up; yields it once every model is AVAILABLE with its gRPC target and REST URL. On the way out: SIGTERM,
    and the server must exit 0 without a traceback and without having imported TensorFlow."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(DRIVER), "--", *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env
        )
    assert proc.stdout is not None  # a PIPE
    line = proc.stdout.readline()  # the addresses, once every model is AVAILABLE
    m = ADDRESS.search(line)
    if not m:
        proc.kill()
        proc.wait(30)
        raise AssertionError(f"server did not start: {line!r}\n{stderr_path.read_text()[-3000:]}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # stdout must never block the server
    try:
        yield proc, m.group(1), m.group(2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        tail = stderr_path.read_text(errors="replace")
        assert "Traceback" not in tail, tail[-3000:]
        assert proc.returncode == 0 and "blocked imports: []" in tail, tail[-3000:]  # clean exit, no TensorFlow
