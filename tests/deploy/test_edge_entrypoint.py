"""The edge image's entrypoint takes TF Serving's ``docker run`` contract: ``MODEL_NAME`` / ``MODEL_BASE_PATH``,
gRPC 8500 and REST 8501, all interfaces, and every argument after the image passed on to the server (the last of a
flag given twice wins), as ``tensorflow_serving/tools/docker/Dockerfile``'s ``tf_serving_entrypoint.sh`` does.

Docker is not available here, so the image is not built: the scripts the Dockerfile copies in are run as they are,
first with a stand-in ``deepclf`` on ``PATH`` that prints the argv it gets (what the script passes on, exactly),
then with the real ``deepclf`` against real models (the server starts and answers). The Dockerfile's wiring
(ENTRYPOINT, COPY, .dockerignore) is checked in tests/deploy/test_tfserving.py::test_edge_dockerfile_references.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from deepclf.serving.cli import build_serve_args, config_from_args

REPO = Path(__file__).resolve().parents[2]
EDGE = REPO / "deployment" / "edge"
ENTRYPOINT = EDGE / "tf_serving_entrypoint.sh"
TF_MODEL_SERVER = EDGE / "tensorflow_model_server"


@pytest.fixture
def fake_deepclf(tmp_path: Path) -> Path:
    """A folder with a ``deepclf`` that prints each argument on its own line (stands in for the server)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    fake = bin_dir / "deepclf"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    return bin_dir


def _run(script: Path, args: list[str], path_first: Path, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("MODEL_NAME", "MODEL_BASE_PATH")}
    environ.update(env, PATH=f"{path_first}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([str(script), *args], env=environ, capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.splitlines()


def test_scripts_are_executable_posix_sh() -> None:
    for script in (ENTRYPOINT, TF_MODEL_SERVER):
        assert os.access(script, os.X_OK), f"{script} is not executable (git update-index --chmod=+x)"
        assert script.read_text().startswith("#!/bin/sh\n")
        subprocess.run(["sh", "-n", str(script)], check=True)


def test_entrypoint_passes_the_model_and_every_argument_on(fake_deepclf: Path) -> None:
    base = ["serve", "--port=8500", "--rest_api_port=8501", "--host=0.0.0.0"]
    # `docker run -e MODEL_NAME=half_plus_two tensorflow/serving`
    argv = _run(ENTRYPOINT, [], fake_deepclf, MODEL_NAME="half_plus_two", MODEL_BASE_PATH="/models")
    assert argv == [*base, "--model_name=half_plus_two", "--model_base_path=/models/half_plus_two"]
    # The image's defaults (ENV MODEL_BASE_PATH=/models MODEL_NAME=model), also when the variables are unset.
    assert _run(ENTRYPOINT, [], fake_deepclf)[-2:] == ["--model_name=model", "--model_base_path=/models/model"]
    # `docker run IMAGE --model_config_file=... --port=9000 ...`: passed on unchanged, after the defaults; an
    # argument with a space stays one argument.
    extra = ["--model_config_file=/models/my models.config", "--port=9000", "--enable_batching", "--rest_api_port", "0"]
    argv = _run(ENTRYPOINT, extra, fake_deepclf, MODEL_NAME="m", MODEL_BASE_PATH="/data/models")
    assert argv == [*base, "--model_name=m", "--model_base_path=/data/models/m", *extra]


def test_what_the_server_makes_of_it(fake_deepclf: Path) -> None:
    """``deepclf serve`` reads the passed-on command line as tensorflow_model_server does: the last value wins,
    and the config file takes precedence over --model_name/--model_base_path."""
    argv = _run(
        ENTRYPOINT,
        ["--port=9000", "--model_name=other", "--model_config_file=/models/models.config", "--host=127.0.0.1"],
        fake_deepclf,
        MODEL_NAME="flowers",
    )
    assert argv[0] == "serve"
    cfg = config_from_args(build_serve_args(argv[1:]))
    assert (cfg.port, cfg.rest_api_port, cfg.host, cfg.model_name) == (9000, 8501, "127.0.0.1", "other")
    assert cfg.model_config_file == "/models/models.config"
    cfg = config_from_args(build_serve_args(_run(ENTRYPOINT, [], fake_deepclf, MODEL_NAME="flowers")[1:]))
    assert cfg.host == "0.0.0.0" and cfg.model_base_path == "/models/flowers"  # all interfaces in the container


def test_tensorflow_model_server_command(fake_deepclf: Path) -> None:
    """``docker run --entrypoint=tensorflow_model_server IMAGE --enable_batching --port=8500 ...`` (serving_advanced.md)."""
    args = ["--enable_batching", "--port=8500", "--model_name=mnist", "--model_base_path=/models/mnist"]
    assert _run(TF_MODEL_SERVER, args, fake_deepclf) == ["serve", "--host=0.0.0.0", *args]


def test_entrypoint_starts_the_real_server(shared_version_dir: Path, tmp_path: Path) -> None:
    """The script with the real ``deepclf`` of this environment: the server it execs serves ``MODEL_NAME`` from
    ``MODEL_BASE_PATH`` (loopback and free ports passed on as arguments, as ``docker run IMAGE ...`` would), and
    SIGTERM reaches it (exec: no shell in between) and ends it cleanly."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "deepclf").exists(), "the deepclf command of this environment"
    shutil.copytree(shared_version_dir.parent, tmp_path / "models" / "flowers")
    environ = dict(os.environ, MODEL_NAME="flowers", MODEL_BASE_PATH=str(tmp_path / "models"))
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ['PATH']}"
    proc = subprocess.Popen(
        [str(ENTRYPOINT), "--port=0", "--rest_api_port=0", "--host=127.0.0.1", "--threads=1"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"REST on (http://\S+);", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        status = requests.get(f"{m[1]}/v1/models/flowers", timeout=30).json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
