"""``models.config`` and the batching parameters file read as ``tensorflow_model_server`` reads them
(docs/tfserving-behaviour.md §2.1, §3.1; TF Serving's model_servers/server_core.cc and session_bundle_config.proto):

* ``model_platform``: ``"tensorflow"`` is TF Serving's only platform (also for its TFLite models), or the
  deprecated ``model_type: TENSORFLOW``; anything else is refused in TF Serving's words (``GetPlatform`` and the
  router's "requests unsupported platform");
* a relative ``base_path``, which TF Serving refuses ("Expected model <m> to have an absolute path or URI"), is
  taken from the working directory (not the config file's folder), with a warning that says so;
* the batching parameters file is a text proto parsed as one: ``allowed_batch_sizes: [1, 2, 4]``, ``< >`` or
  ``{ }`` messages, comments, single quotes.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from deepclf.errors import UsageError
from deepclf.serving.batching import parse_batching_parameters
from deepclf.serving.modelconfig import load_model_config_file
from tests.serving.child_server import DRIVER, REPO, child_server

HPT = "half_plus_two"

# -- model_platform ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ('model_platform: "tensorflow"', None),
        ("model_type: TENSORFLOW", None),  # deprecated, still TF Serving's platform (DeprecatedModelTypeConfig)
        (
            "",
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform, model name is m",
        ),
        ('model_platform: "tflite"', "Model m requests unsupported platform tflite"),  # UnknownModelPlatform
        (
            'model_platform: "tensorflow" model_type: TENSORFLOW',
            "Illegal setting both ModelServerConfig::model_type "
            "(deprecated) and ModelServerConfig::model_platform, model name is m",
        ),  # IllegalConfigModelTypeAndPlatformSet
        ("model_type: OTHER", "ModelServerConfig::model_type choice 2 not supported."),
    ],
)
def test_model_platform_as_tf_serving_checks_it(tmp_path: Path, fields: str, error: str | None) -> None:
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "m" base_path: "/models/m" {fields} }} }}')
    if error is None:
        assert [m.name for m in load_model_config_file(config)] == ["m"]
        return
    with pytest.raises(UsageError) as exc:
        load_model_config_file(config)
    assert error in str(exc.value) and 'model_platform: "tensorflow"' in str(exc.value)  # and what to write


def test_unsupported_platform_stops_deepclf_serve_in_one_line(models_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "{HPT}" base_path: "{models_root / HPT}" '
        'model_platform: "tensorflow_lite" } }'
    )
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "--", f"--model_config_file={config}", "--port=0", "--rest_api_port=0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: Model {HPT} requests unsupported platform tensorflow_lite" in proc.stderr


# -- relative base_path ------------------------------------------------------------------------------------------


def test_relative_base_path_is_taken_from_the_working_directory(
    models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from deepclf.serving import EdgeServer, ServerConfig

    work, conf = tmp_path / "work", tmp_path / "conf"
    shutil.copytree(models_root / HPT, work / "models" / HPT)
    conf.mkdir()
    (conf / "models.config").write_text(
        f'model_config_list {{ config {{ name: "{HPT}" base_path: "models/{HPT}" model_platform: "tensorflow" }} }}'
    )
    monkeypatch.chdir(work)
    caplog.set_level(logging.WARNING, logger="deepclf.serving")
    cfg = ServerConfig(model_config_file=conf / "models.config", port=None, rest_api_port=0, threads=1, poll_seconds=0)
    with EdgeServer(cfg) as srv:
        r = requests.post(f"{srv.rest_url}/v1/models/{HPT}:predict", json={"instances": [1.0]}, timeout=30)
        assert r.json() == {"predictions": [2.5]}
        assert srv.manager is not None and srv.manager.statuses(HPT)  # served from work/, not conf/
    (warning,) = [r.getMessage() for r in caplog.records if "relative base_path" in r.getMessage()]
    assert str(work / "models" / HPT) in warning
    assert (
        f'TF Serving refuses it ("Expected model {HPT} to have an absolute path or URI; got base_path()=models/{HPT}")'
        in warning
    )


# -- the batching parameters file --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "max_batch_size { value: 4 }\nallowed_batch_sizes: [1, 2, 4]\n",
        "max_batch_size: { value: 4 } allowed_batch_sizes: [1, 2] allowed_batch_sizes: 4",  # list, then one more
        "# comment\nmax_batch_size < value: 4 >\nallowed_batch_sizes: 1\nallowed_batch_sizes: 2\nallowed_batch_sizes: 4",
        "max_batch_size { value: 0x4 }, allowed_batch_sizes: [1,2,4]; thread_pool_name: { value: 'pool' }",
    ],
)
def test_batching_file_takes_every_text_proto_spelling(text: str) -> None:
    p = parse_batching_parameters(text)
    assert (p.max_batch_size, p.allowed_batch_sizes) == (4, (1, 2, 4))


LIST_SYNTAX = """# TF Serving's BatchingParameters, list syntax for the repeated field
max_batch_size { value: 4 }
batch_timeout_micros { value: 200000 }
num_batch_threads { value: 1 }
max_enqueued_batches { value: 10 }
allowed_batch_sizes: [1, 2, 4]
pad_variable_length_inputs: true
"""


def test_batching_file_with_list_syntax_starts_deepclf_serve(models_root: Path, tmp_path: Path) -> None:
    f = tmp_path / "batching.config"
    f.write_text(LIST_SYNTAX)
    args = [
        "--port=0",
        "--rest_api_port=0",
        f"--model_base_path={models_root / HPT}",
        "--enable_batching",
        f"--batching_parameters_file={f}",
    ]
    with child_server(args, tmp_path / "serve.stderr") as (_proc, _target, rest):
        r = requests.post(f"{rest}/v1/models/{HPT}:predict", json={"instances": [1.0, 2.0, 5.0]}, timeout=30)
        assert r.json() == {"predictions": [2.5, 3.0, 4.5]}
        too_big = requests.post(f"{rest}/v1/models/{HPT}:predict", json={"instances": [1.0] * 5}, timeout=30)
        assert too_big.status_code == 400 and "larger than maximum input batch size 4" in too_big.json()["error"]


def test_batching_file_list_reaches_the_batcher(models_root: Path, tmp_path: Path) -> None:
    """The allowed sizes of the list are what the runner is called with: 3 rows padded to 4."""
    from deepclf.serving import EdgeServer, ServerConfig

    f = tmp_path / "batching.config"
    f.write_text(LIST_SYNTAX)
    seen: list[int] = []

    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def run(self, inputs: dict[str, np.ndarray], signature: str = "serving_default") -> Any:
            seen.append(len(next(iter(inputs.values()))))
            return self.inner.run(inputs, signature)

    cfg = ServerConfig(
        model_base_path=models_root / HPT,
        port=None,
        rest_api_port=0,
        threads=1,
        poll_seconds=0,
        enable_batching=True,
        batching_parameters_file=f,
        enable_model_warmup=False,
        runner_wrapper=Counting,
    )
    with EdgeServer(cfg) as srv:
        r = requests.post(f"{srv.rest_url}/v1/models/{HPT}:predict", json={"instances": [1.0, 2.0, 5.0]}, timeout=30)
        assert r.json() == {"predictions": [2.5, 3.0, 4.5]}
    assert seen == [4], seen
