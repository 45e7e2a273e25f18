"""``deepclf serve`` as a child process for the tests that measure it from outside (its RSS, its behaviour under
load): started through ``serve_driver.py`` (TensorFlow blocked), stopped with SIGTERM, and checked to have exited
cleanly::

    with child_server(["--model_name=flowers", ...], tmp_path / "serve.stderr") as (proc, grpc_target, rest_url):
        ...

``tensorflow=True`` runs the ``deepclf serve`` command itself instead, TensorFlow allowed: what serves any
SavedModel (TF Serving's test models), as a user would start it.
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


def serve_command() -> list[str]:
    """The ``deepclf serve`` command of this environment (the console script beside the interpreter)."""
    script = Path(sys.executable).with_name("deepclf")
    if script.is_file():
        return [str(script), "serve"]
    return [sys.executable, "-c", "import sys; from deepclf.cli import main; sys.exit(main(sys.argv[1:]))", "serve"]


@contextmanager
def child_server(
    args: Sequence[str], stderr_path: Path, *, tensorflow: bool = False
) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """The server with ``args`` (``deepclf serve`` flags), its stderr (the access log) in a file so that no pipe
    fills up; yields it once every model is AVAILABLE with its gRPC target and REST URL. On the way out: SIGTERM,
    and the server must exit 0 without a traceback (and, unless ``tensorflow``, without having imported it)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [*serve_command(), *args] if tensorflow else [sys.executable, str(DRIVER), "--", *args]
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
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
        assert proc.returncode == 0, tail[-3000:]  # a clean exit
        assert tensorflow or "blocked imports: []" in tail, tail[-3000:]  # and no TensorFlow where none may be
