"""deepclf.bench.process.wait_available with real child processes: why a server is not AVAILABLE."""

from __future__ import annotations

import subprocess
import sys
import time

from deepclf.bench.process import stop_process, wait_available


def test_a_server_that_exits_is_reported_with_its_status(closed_port):
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_available(proc, closed_port, "m", timeout=30) == "server exited with status 3"


def test_a_server_that_never_serves_the_model_times_out(closed_port):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        t0 = time.monotonic()
        assert wait_available(proc, closed_port, "m", timeout=0.5) == "not AVAILABLE after 0.5 s"
        assert 0.5 <= time.monotonic() - t0 < 10
    finally:
        stop_process(proc)


def test_an_available_model_returns_none(shared_version_dir):
    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(
        model_name="flowers", model_base_path=str(shared_version_dir.parent), port=None, rest_api_port=0, threads=1
    )
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the server runs in-process
    try:
        with EdgeServer(cfg) as srv:
            assert srv.rest_port is not None  # bound once started
            assert wait_available(stand_in, srv.rest_port, "flowers", timeout=30) is None
    finally:
        stop_process(stand_in)
