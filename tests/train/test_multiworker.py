"""Multi-worker training for real: two ``deepclf train`` processes on loopback with ``TF_CONFIG``.

No mocks: each test starts real worker processes that form a ``MultiWorkerMirroredStrategy`` cluster over gRPC on
127.0.0.1, on a small generated dataset (so it runs on any machine), and checks what a user would: both exit 0, the
chief's model loads and predicts, the log names the strategy with 2 workers, nothing of the other worker is left,
an interrupted pair resumes together, and a worker alone gives up with a clear message instead of hanging.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deepclf.errors import UsageError
from deepclf.train.strategy import PEER_TIMEOUT_EXIT, ClusterRole, cluster_role

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # per pair of workers; a healthy pair takes ~10-20 s here


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _tf_config(ports: list[int], index: int) -> str:
    return json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )


def _env(tf_config: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = ""
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config
    return env


def _start_pair(argv_for, cwd: Path) -> list[subprocess.Popen]:
    """Two workers in ``cwd``, with their own temporary folder ``cwd/tmp`` (TMPDIR): what they leave there is theirs,
    whatever else runs on the machine at the same time."""
    ports = _free_ports(2)
    (cwd / "tmp").mkdir(exist_ok=True)
    envs = [{**_env(_tf_config(ports, i)), "TMPDIR": str(cwd / "tmp")} for i in range(2)]
    return [
        subprocess.Popen(argv_for(i), cwd=cwd, env=envs[i], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    out = []
    deadline = time.monotonic() + TIMEOUT
    try:
        for p in procs:
            text, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            out.append((p.returncode, text))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()  # TensorFlow ignores SIGTERM while it waits for a cluster
                p.wait()
    return out


@pytest.fixture(scope="module")
def mw_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 small generated JPEGs (smaller than the session's ``gen_photos``: two processes train on them per test)."""
    from deepclf.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("mw") / "photos", per_class=16, size=(48, 56))


def _train_argv(data: Path, out: str, *extra: str, model: str = "basic") -> list[str]:
    return [
        sys.executable,
        "-m",
        "deepclf.cli",
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--epochs",
        "1",
        "--img-size",
        "32",
        "--batch-size",
        "16",
        "--out",
        out,
        *extra,
    ]


def test_two_workers_on_loopback_train_one_model(mw_photos: Path, tmp_path: Path) -> None:
    procs = _start_pair(lambda i: _train_argv(mw_photos, f"runs/mw-{i}"), tmp_path)
    (rc0, log0), (rc1, log1) = _finish(procs)
    assert rc0 == 0, log0[-3000:]
    assert rc1 == 0, log1[-3000:]
    assert "strategy: MultiWorkerMirroredStrategy (2 workers, this is worker 0)" in log0
    assert "[worker 1] strategy: MultiWorkerMirroredStrategy (2 workers, this is worker 1)" in log1
    assert "run folder:" in log0 and "run folder:" not in log1  # only the chief claims a run folder
    chief = tmp_path / "runs" / "mw-0"
    for name in (
        "model.keras",
        "manifest.json",
        "config.json",
        "history.json",
        "metrics.json",
        "train.log",
        "plots/curves.png",
        "plots/confusion_matrix.png",
    ):
        assert (chief / name).is_file(), name
    assert not (chief / "checkpoints").exists()
    # Nothing of the non-chief is left: not its --out folder, not its temporary folder.
    assert not (tmp_path / "runs" / "mw-1").exists()
    assert not list((tmp_path / "tmp").glob("deepclf-train-*"))  # the workers' TMPDIR (see _start_pair)
    config = json.loads((chief / "config.json").read_text())
    assert config["distribution"]["workers"] == 2 and config["distribution"]["replicas"] == 2
    assert "MultiWorkerMirroredStrategy (2 workers" in (chief / "train.log").read_text()
    metrics = json.loads((chief / "metrics.json").read_text())
    assert metrics["workers"] == 2 and sum(map(sum, metrics["confusion_matrix"])) == 16  # the whole val split

    # The chief's model loads and predicts, in a fresh single-process interpreter.
    code = (
        "import numpy as np, keras; m = keras.models.load_model('runs/mw-0/model.keras'); "
        "p = m.predict(np.zeros((2, 32, 32, 3), 'float32'), verbose=0); print(p.shape, np.isfinite(p).all())"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(None), capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "(2, 5) True" in res.stdout


@pytest.mark.slow  # ~1 min: two TF workers; keeps make test under 15 min (run by make test-slow)
def test_two_workers_train_the_edge_model_on_its_recipe(mw_photos: Path, tmp_path: Path) -> None:
    # The edge recipe's pipeline (uint8 cache, whole batches, a seed per batch for the augmentation) sharded over
    # two workers: 64 training photos in 4 global batches of 16, 8 per replica.
    procs = _start_pair(lambda i: _train_argv(mw_photos, f"runs/mw-{i}", "--epochs", "2", model="edge"), tmp_path)
    (rc0, log0), (rc1, log1) = _finish(procs)
    assert rc0 == 0, log0[-3000:]
    assert rc1 == 0, log1[-3000:]
    chief = tmp_path / "runs" / "mw-0"
    config = json.loads((chief / "config.json").read_text())
    assert config["model"] == "edge" and config["distribution"]["workers"] == 2
    assert config["recipe"]["optimizer"] == "adamw" and config["recipe"]["augment"] is not None
    assert len(json.loads((chief / "history.json").read_text())["accuracy"]) == 2
    assert not (tmp_path / "runs" / "mw-1").exists() and not (chief / "checkpoints").exists()
    code = (
        "import numpy as np, keras; m = keras.models.load_model('runs/mw-0/model.keras', compile=False); "
        "p = m.predict(np.zeros((2, 32, 32, 3), 'float32'), verbose=0); print(p.shape, np.isfinite(p).all())"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(None), capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "(2, 5) True" in res.stdout


_INTERRUPTING_WORKER = """
import sys
import keras
from deepclf.train.trainer import TrainConfig, train

class Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:  # after the second epoch's backup: a preemption of the whole cluster
            raise KeyboardInterrupt("preempted")

cfg = TrainConfig(model="basic", data_dir=sys.argv[1], run_dir=sys.argv[2], epochs=4, img_size=(32, 32),
                  batch_size=16)
try:
    train(cfg, extra_callbacks=[Stop()], verbose=0)
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(9)
"""


def test_interrupted_pair_resumes_from_the_chiefs_backup(mw_photos: Path, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_INTERRUPTING_WORKER)
    procs = _start_pair(lambda i: [sys.executable, str(script), str(mw_photos), f"runs/mw-{i}"], tmp_path)
    for rc, log in _finish(procs):
        assert rc == 9 and "interrupted" in log, log[-3000:]
    chief = tmp_path / "runs" / "mw-0"
    assert json.loads((chief / "checkpoints" / "training_metadata.json").read_text())["epoch"] == 2
    assert not (chief / "model.keras").exists() and not (tmp_path / "runs" / "mw-1").exists()

    # Same command again: the chief restores its backup and sends it to worker 1; both run epochs 3 and 4 only.
    procs = _start_pair(lambda i: _train_argv(mw_photos, f"runs/mw-{i}", "--epochs", "4"), tmp_path)
    (rc0, log0), (rc1, log1) = _finish(procs)
    assert rc0 == 0, log0[-3000:]
    assert rc1 == 0, log1[-3000:]
    assert "resuming the interrupted run in runs/mw-0 after epoch 2" in log0
    assert "[worker 1] resuming the interrupted run in the chief after epoch 2" in log1
    history = json.loads((chief / "history.json").read_text())
    assert len(history["accuracy"]) == 4  # no epoch lost or repeated
    assert not (chief / "checkpoints").exists() and not (tmp_path / "runs" / "mw-1").exists()


def test_a_worker_whose_peers_never_come_fails_within_its_timeout(mw_photos: Path, tmp_path: Path) -> None:
    port, absent = _free_ports(2)
    tf_config = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{absent}"]}, "task": {"type": "worker", "index": 0}}
    )
    start = time.monotonic()
    proc = subprocess.Popen(
        _train_argv(mw_photos, "runs/alone", "--peer-timeout", "5"),
        cwd=tmp_path,
        env=_env(tf_config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ((rc, log),) = _finish([proc])
    elapsed = time.monotonic() - start
    assert rc == PEER_TIMEOUT_EXIT, log[-3000:]
    assert f"127.0.0.1:{absent}" in log and "did not join within 5 s" in log
    assert "Traceback" not in log
    assert elapsed < 60  # 5 s of waiting plus TensorFlow's start-up, not a hang
    assert not (tmp_path / "runs" / "alone").exists()  # it wrote nothing that lasts


def test_cluster_role_reads_tf_config_without_tensorflow() -> None:
    two: dict[str, Any] = {"cluster": {"worker": ["h0:1", "h1:1"]}, "task": {"type": "worker", "index": 1}}
    role = cluster_role("auto", {"TF_CONFIG": json.dumps(two)})
    assert role == ClusterRole("worker", 1, 2, ("h0:1",), False)
    assert not role.is_chief and role.multi_worker
    two["task"]["index"] = 0
    assert cluster_role("auto", {"TF_CONFIG": json.dumps(two)}).is_chief
    with_chief = {"cluster": {"chief": ["c:1"], "worker": ["h0:1"]}, "task": {"type": "worker", "index": 0}}
    role = cluster_role("auto", {"TF_CONFIG": json.dumps(with_chief)})
    assert role.workers == 2 and not role.is_chief  # a cluster with a chief task: worker 0 is not the chief
    assert cluster_role("default", {"TF_CONFIG": json.dumps(two)}) == ClusterRole.single()
    assert cluster_role("auto", {}).is_chief


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', "lacks a 'cluster' or 'task'"),
        ('{"cluster": {"worker": ["h0"]}, "task": {"type": "worker", "index": 0}}', "list of 'host:port'"),
        ('{"cluster": {"worker": ["h0:1"]}, "task": {"type": "worker", "index": 3}}', "task index 3"),
        ('{"cluster": {"worker": ["h0:1"], "ps": ["p:1"]}, "task": {"type": "ps", "index": 0}}', "cannot train here"),
    ],
)
def test_bad_tf_config_is_refused_clearly(tf_config: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cluster_role("auto", {"TF_CONFIG": tf_config})
    with pytest.raises(UsageError, match="needs TF_CONFIG"):
        cluster_role("multiworker", {})


def test_bad_tf_config_on_the_command_line_is_one_error_line(mw_photos: Path, tmp_path: Path) -> None:
    res = subprocess.run(
        _train_argv(mw_photos, "runs/x"),
        cwd=tmp_path,
        env=_env('{"cluster": 1}'),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "error: TF_CONFIG" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "runs").exists()
