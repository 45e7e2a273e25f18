"""Failed version loads are retried with exponential backoff, and one bad folder never stops the poll.

Real server over loopback: a good version beside a corrupt one (random bytes for ``model.tflite``), plus folders
that are not versions (``²``, a number past int64); the corrupt version is fixed in place without touching its
folder's mtime and must become AVAILABLE from the backoff alone. ``ModelManager`` unit tests with fake loaders
cover the backoff schedule and loaders that raise anything.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import grpc
import pytest
import requests

from deepclf import protocol as P
from deepclf.serving import EdgeServer, ModelConfig, ServerConfig
from deepclf.serving.models import AVAILABLE, END, ModelManager

HPT = "half_plus_two"


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_corrupt_version_is_retried_with_backoff_until_it_loads(
    tmp_path: Path, half_plus_two_tflite: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="deepclf.serving")
    base = tmp_path / HPT
    for name in ("1", "2", "²", "99999999999999999999999"):
        (base / name).mkdir(parents=True)
        (base / name / "model.tflite").write_bytes(half_plus_two_tflite)
    bad = base / "2" / "model.tflite"
    bad.write_bytes(os.urandom(4096))  # corrupt: not a FlatBuffer
    cfg = ServerConfig(
        model_configs=[ModelConfig(HPT, str(base), policy="all")],
        host="127.0.0.1",
        port=0,
        rest_api_port=0,
        threads=1,
        poll_seconds=0.2,
        access_log=False,
    )
    body = b'{"instances": [4.0]}'
    with EdgeServer(cfg) as srv, grpc.insecure_channel(srv.grpc_target) as ch:
        manager = srv.manager
        assert manager is not None
        rest = f"{srv.rest_url}/v1/models/{HPT}"
        # The good version serves; the bad one is reported as failed (END with its load error).
        r = requests.post(f"{rest}/versions/1:predict", data=body, timeout=10)
        assert r.status_code == 200 and r.json() == {"predictions": [4.0]}
        doc = requests.get(rest, timeout=10).json()
        states = {int(s["version"]): s for s in doc["model_version_status"]}
        assert set(states) == {1, 2}  # '²' and the too-large number are not versions
        assert states[1]["state"] == "AVAILABLE"
        assert states[2]["state"] == "END" and states[2]["status"]["error_message"]
        status = P.unary_unary(ch, P.GET_MODEL_STATUS)(
            P.GetModelStatusRequest(model_spec=P.model_spec(HPT, 2)), timeout=10
        )
        (entry,) = status.model_version_status
        assert entry.state == END and entry.status.error_code != 0 and entry.status.error_message

        # Later polls retry it (its folder did not change), backing off: failures grow, the log says when next.
        assert wait_for(lambda: manager.statuses(HPT, 2)[0].failures >= 3, timeout=5.0)
        assert any("next attempt in" in r.getMessage() for r in caplog.records)
        assert requests.post(f"{rest}/versions/1:predict", data=body, timeout=10).status_code == 200

        # Fix the files in place and put the folder's mtime back: only the backoff can pick it up.
        folder_mtime = (base / "2").stat().st_mtime_ns
        tmp = base / "2" / "model.tflite.tmp"
        tmp.write_bytes(half_plus_two_tflite)
        os.replace(tmp, bad)
        os.utime(base / "2", ns=(folder_mtime, folder_mtime))
        assert (base / "2").stat().st_mtime_ns == folder_mtime
        fixed_at = time.monotonic()
        # Due within one backoff step of the failures so far (<= 2x the ~1.4 s spent failing), well under 10 s.
        assert wait_for(lambda: manager.statuses(HPT, 2)[0].state == AVAILABLE, timeout=10.0), manager.statuses(HPT, 2)
        assert time.monotonic() - fixed_at < 10.0
        r = requests.post(f"{rest}/versions/2:predict", data=body, timeout=10)
        assert r.status_code == 200 and r.json() == {"predictions": [4.0]}
        assert srv.describe() == {HPT: {"1": "tflite-generic", "2": "tflite-generic"}}
        assert {s.version for s in manager.statuses(HPT)} == {1, 2}


# ------------------------------------------------------------------------------------------- unit: ModelManager


class FakeRunner:
    format = "fake"
    signatures: ClassVar[dict[str, Any]] = {}

    def close(self) -> None:
        pass


def _manager(tmp_path: Path, loader: Callable[[Path], Any], **kw: Any) -> tuple[ModelManager, Path]:
    base = tmp_path / "m"
    for v in ("1", "2"):
        (base / v).mkdir(parents=True)
    kw.setdefault("poll_seconds", 0)
    return ModelManager([ModelConfig("m", str(base), policy="all")], loader=loader, **kw), base


def test_backoff_doubles_up_to_the_cap_and_a_folder_change_retries_at_once(tmp_path: Path) -> None:
    attempts: list[float] = []
    broken = {"2"}

    def loader(path: Path) -> FakeRunner:
        if path.name in broken:
            attempts.append(time.monotonic())
            raise PermissionError(13, "Permission denied", str(path / "model.tflite"))
        return FakeRunner()

    manager, base = _manager(tmp_path, loader, retry_seconds=0.1, max_retry_seconds=0.4)
    manager.load_initial()
    assert manager.summary() == {"m": [1]}
    (st,) = manager.statuses("m", 2)
    assert st.state == END and "Permission denied" in st.error_message and st.failures == 1
    manager.poll_once()  # too soon: no new attempt
    assert len(attempts) == 1
    # The scheduled delays: 0.1, 0.2, 0.4, then capped at 0.4.
    for failures, delay in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.4), (50, 0.4), (10_000, 0.4)):
        assert manager._backoff(failures) == pytest.approx(delay)
    deadline = time.monotonic() + 5.0
    while len(attempts) < 4 and time.monotonic() < deadline:
        manager.poll_once()
        time.sleep(0.02)
    assert len(attempts) == 4
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4, gaps
    assert manager.statuses("m", 2)[0].failures == 4
    # A changed folder (a re-publish) is retried at once, whatever the backoff says.
    broken.clear()
    os.utime(base / "2", (time.time() + 5, time.time() + 5))
    manager.poll_once()
    assert manager.summary() == {"m": [1, 2]}
    assert manager.statuses("m", 2)[0].failures == 0
    manager.close()


def test_one_bad_folder_or_model_never_stops_the_poll(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="deepclf.serving")
    good, bad = tmp_path / "good", tmp_path / "bad"
    for name in ("1", "2", "3", "²", "99999999999999999999999"):
        (good / name).mkdir(parents=True)
    (bad / "1").mkdir(parents=True)

    def loader(path: Path) -> FakeRunner:
        if path.parent == good and path.name == "2":  # the folder disappears while it is being loaded
            shutil.rmtree(path)
            raise FileNotFoundError(2, "No such file or directory", str(path / "model.tflite"))
        if path.parent == good and path.name == "3":
            raise SystemError("a native loader blew up")
        return FakeRunner()

    changes = 0

    def on_change() -> None:
        nonlocal changes
        changes += 1
        raise RuntimeError("a listener bug")

    manager = ModelManager(
        [ModelConfig("good", str(good), policy="all"), ModelConfig("bad", str(bad))],
        loader=loader,
        poll_seconds=0,
        on_change=on_change,
    )
    manager.load_initial()
    assert manager.summary() == {"bad": [1], "good": [1]}
    assert changes > 0
    assert {s.version: s.state for s in manager.statuses("good")} == {1: AVAILABLE, 2: END, 3: END}
    # The known versions (what metrics may label): real models, versions the manager has seen; not '²' and co.
    assert manager.known_versions() == {"good": frozenset({1, 2, 3}), "bad": frozenset({1})}

    # A model whose scan itself fails (here: the policy raises) is skipped; the next model is still scanned.
    class Exploding(ModelConfig):
        def wanted(self, available: Any) -> list[int]:
            raise OSError("scan failed")

    (bad / "2").mkdir()
    manager.reconfigure([Exploding("good", str(good), policy="all"), ModelConfig("bad", str(bad))])
    assert manager.summary() == {"bad": [2], "good": [1]}
    assert any("scanning" in r.getMessage() for r in caplog.records)
    manager.close()


# ------------------------------------------------------------------------- deepclf serve: TF Serving's defaults


def test_load_retry_flags_default_to_tf_servings() -> None:
    """``--max_num_load_retries`` 5 and ``--load_retry_interval_micros`` 1 min (main.cc), and a base path that is
    not there yet is waited for (no start-up timeout), as TF Serving."""
    from deepclf.serving.cli import build_serve_args, config_from_args

    cfg = config_from_args(build_serve_args(["--model_base_path=/m"]))
    assert (cfg.max_num_load_retries, cfg.load_retry_interval_micros, cfg.startup_timeout) == (5, 60_000_000, None)


def _serve(args: list[str], stderr: Path) -> subprocess.Popen:
    driver = Path(__file__).with_name("serve_driver.py")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    with open(stderr, "w") as err:
        return subprocess.Popen(
            [sys.executable, str(driver), "--", *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env
        )


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The server's first stdout line (its addresses, once everything is AVAILABLE), or '' after ``timeout``."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def test_storage_that_mounts_late_and_a_model_still_being_copied(tmp_path: Path, half_plus_two_tflite: bytes) -> None:
    """``deepclf serve`` with TF Serving's defaults: the base path appears 1 s after start (a volume mounted late),
    its version's file is corrupt at first (still being copied) and fixed during the in-place load retries; the
    server waits, retries, and serves; nothing is fatal on the way."""
    base = tmp_path / "mnt" / HPT
    stderr = tmp_path / "serve.stderr"
    proc = _serve(
        [
            f"--model_base_path={base}",
            "--port=0",
            "--rest_api_port=0",
            "--threads=1",
            "--file_system_poll_wait_seconds=0.2",
            "--load_retry_interval_micros=1000000",  # 1 s instead of 1 min; the default 5 retries
        ],
        stderr,
    )
    try:
        assert _first_line(proc, 1.5) == "" and proc.poll() is None  # waiting, not stopped
        assert wait_for(lambda: "does not exist; waiting for it" in stderr.read_text(), timeout=10)
        staging = tmp_path / "staging"
        (staging / "1").mkdir(parents=True)
        (staging / "1" / "model.tflite").write_bytes(half_plus_two_tflite[: len(half_plus_two_tflite) // 3])
        base.parent.mkdir()
        os.replace(staging, base)  # the mount appears, with a half-copied model
        assert wait_for(lambda: "retry 1 of 5" in stderr.read_text(), timeout=20), stderr.read_text()[-2000:]
        tmp = base / "1" / "model.tflite.tmp"
        tmp.write_bytes(half_plus_two_tflite)
        os.replace(tmp, base / "1" / "model.tflite")  # the copy completes
        line = _first_line(proc, 30)
        m = re.search(r"REST on (http://\S+);", line)
        assert m, (line, stderr.read_text()[-3000:])
        r = requests.post(f"{m[1]}/v1/models/{HPT}:predict", json={"instances": [1.0]}, timeout=30)
        assert r.json() == {"predictions": [2.5]}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0 and "Traceback" not in stderr.read_text()


def test_sigterm_while_waiting_for_storage_stops_at_once(tmp_path: Path) -> None:
    stderr = tmp_path / "serve.stderr"
    proc = _serve([f"--model_base_path={tmp_path / 'never'}", "--port=0", "--rest_api_port=0"], stderr)
    try:
        assert wait_for(lambda: "waiting for it" in stderr.read_text(), timeout=60)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    text = stderr.read_text()
    assert proc.returncode == 0 and "SIGTERM received while starting" in text and "Traceback" not in text
