"""Version labels checked as TF Serving checks them (model_servers/server_core.cc ``UpdateModelVersionLabelMap``;
the cases of server_core_test.cc ``AssignLabelToUnavailableVersion[Allowed]`` and
``AssignExistingLabelToUnavailableVersionDisallowed``; docs/tfserving-behaviour.md §3.5), against a real
``deepclf serve`` started with a TF Serving command line and reloaded through ``HandleReloadConfigRequest``:

* a label may name only a version that is AVAILABLE; the first config's labels are checked before anything loads,
  so a config with labels starts only with ``--allow_version_labels_for_unavailable_models``;
* with that flag a *new* label (or one already naming that version) may name a version that is not loaded (its
  requests are NOT_FOUND until it is), but an existing label cannot move to a version that is not AVAILABLE;
* the error is FAILED_PRECONDITION "Request to assign label to version <v> of model <m>, which is not currently
  available for inference", and the running config stays.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from deepclf import protocol as P
from tests.serving.child_server import DRIVER, REPO, child_server

HPT = "half_plus_two"
REFUSED = (
    "Request to assign label to version {v} of model half_plus_two, which is not currently available for inference"
)


def _config(base: Path, labels: dict[str, int], versions: tuple[int, ...] = (1, 2)) -> str:
    specific = " ".join(f"versions: {v}" for v in versions)
    entries = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
    return (
        f'model_config_list {{ config {{ name: "{HPT}" base_path: "{base}" model_platform: "tensorflow" '
        f"model_version_policy {{ specific {{ {specific} }} }} {entries} }} }}"
    )


@pytest.fixture
def base(models_root: Path, tmp_path: Path) -> Path:
    """half_plus_two with versions 1 and 2 (3 is never there)."""
    out = tmp_path / HPT
    shutil.copytree(models_root / HPT / "1", out / "1")
    shutil.copytree(models_root / HPT / "1", out / "2")
    return out


def _reload(channel: grpc.Channel, text: str) -> tuple[grpc.StatusCode, str]:
    """``HandleReloadConfigRequest`` with ``text``: its status code and details."""
    from deepclf.serving.modelconfig import parse_model_server_config, private_message_class

    request = private_message_class("tensorflow.serving.ReloadConfigRequest")()
    request.config.CopyFrom(parse_model_server_config(text))  # type: ignore[attr-defined]
    call = channel.unary_unary("/tensorflow.serving.ModelService/HandleReloadConfigRequest", None, None)
    try:
        call(request.SerializeToString(), timeout=60)
    except grpc.RpcError as exc:
        return exc.code(), str(exc.details())
    return grpc.StatusCode.OK, ""


def _version_of(channel: grpc.Channel, label: str) -> int | grpc.StatusCode:
    req = P.PredictRequest(model_spec=P.model_spec(HPT, version_label=label))
    req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([1.0], np.float32)))
    try:
        return int(P.unary_unary(channel, P.PREDICT)(req, timeout=30).model_spec.version.value)
    except grpc.RpcError as exc:
        return exc.code()


def test_labels_in_the_first_config_need_the_flag(base: Path, tmp_path: Path) -> None:
    """TF Serving checks the first config's labels before loading anything: without the flag it does not start."""
    config = tmp_path / "models.config"
    config.write_text(_config(base, {"stable": 1}))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "--", f"--model_config_file={config}", "--port=0", "--rest_api_port=0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert REFUSED.format(v=1) in proc.stderr and "--allow_version_labels_for_unavailable_models" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_label_rules_on_reload(base: Path, tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text(_config(base, {"stable": 1}))
    args = [f"--model_config_file={config}", "--port=0", "--rest_api_port=0", "--threads=1"]
    with (
        child_server([*args, "--allow_version_labels_for_unavailable_models"], tmp_path / "serve.stderr") as (
            _proc,
            target,
            _rest,
        ),
        grpc.insecure_channel(target) as ch,
    ):
        assert _version_of(ch, "stable") == 1
        # A new label on an AVAILABLE version, and a label moved to another AVAILABLE version: accepted.
        assert _reload(ch, _config(base, {"stable": 2, "canary": 1}))[0] == grpc.StatusCode.OK
        assert (_version_of(ch, "stable"), _version_of(ch, "canary")) == (2, 1)
        # AssignLabelToUnavailableVersionAllowed: a *new* label on a version that is not loaded (the flag is on);
        # its requests are NOT_FOUND until the version loads.
        assert _reload(ch, _config(base, {"stable": 2, "canary": 1, "next": 3}))[0] == grpc.StatusCode.OK
        assert _version_of(ch, "next") == grpc.StatusCode.NOT_FOUND
        # AssignExistingLabelToUnavailableVersionDisallowed: an existing label cannot move to such a version,
        # flag or not; FAILED_PRECONDITION, and the running labels stay.
        code, details = _reload(ch, _config(base, {"stable": 3, "canary": 1}))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and REFUSED.format(v=3) in details
        assert (_version_of(ch, "stable"), _version_of(ch, "canary")) == (2, 1)


def test_without_the_flag_labels_follow_available_versions(base: Path, tmp_path: Path) -> None:
    """AssignLabelToUnavailableVersion: without the flag, a label may only name an AVAILABLE version; labels can be
    added by a reload once their version is AVAILABLE (TF Serving's documented way)."""
    config = tmp_path / "models.config"
    config.write_text(_config(base, {}))
    args = [f"--model_config_file={config}", "--port=0", "--rest_api_port=0", "--threads=1"]
    with child_server(args, tmp_path / "serve.stderr") as (_proc, target, _rest), grpc.insecure_channel(target) as ch:
        assert _reload(ch, _config(base, {"stable": 1, "canary": 2}))[0] == grpc.StatusCode.OK
        assert (_version_of(ch, "stable"), _version_of(ch, "canary")) == (1, 2)
        code, details = _reload(ch, _config(base, {"stable": 1, "canary": 2, "nice_try": 3}))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and REFUSED.format(v=3) in details
        assert _version_of(ch, "nice_try") == grpc.StatusCode.INVALID_ARGUMENT  # "Unrecognized servable version label"
