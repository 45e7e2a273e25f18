"""``deepclf predict --server grpc://... | http://... --model NAME IMAGE...`` prints what local prediction prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deepclf.cli import main

from .conftest import MODEL


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_remote_predict_prints_the_local_output(
    edge: Any, model_base: Path, photos: list[str], scheme: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = f"grpc://{edge.grpc_target}" if scheme == "grpc" else edge.rest_url
    images = photos[::4]  # 10 photos, 2 per class
    local_v = str(model_base / "2")  # the server's latest version, LiteRT fp32 like the server
    assert _run(capsys, ["predict", "--server", server, "--model", MODEL, *images]) == _run(
        capsys, ["predict", local_v, *images]
    )
    assert _run(capsys, ["predict", "--server", server, "--model", MODEL, images[0]]).startswith(
        "This image most likely belongs to "
    )
    # options may sit between the images, as in local prediction
    assert _run(capsys, ["predict", images[0], "--server", server, images[1], "--model", MODEL]) == _run(
        capsys, ["predict", local_v, images[0], images[1]]
    )

    # top-k names come from the edge server's deepclf_manifest metadata extension: the same as local, in full
    for extra in (["--json", "--top-k", "5"], ["--top-k", "3"], ["--json"]):
        remote = _run(capsys, ["predict", "--server", server, "--model", MODEL, *images, *extra])
        local = _run(capsys, ["predict", local_v, *images, *extra])
        assert remote == local
        if "--json" in extra:
            assert len(json.loads(remote)) == len(images)
    top = json.loads(_run(capsys, ["predict", "--server", server, "--model", MODEL, *images, "--json", "--top-k", "5"]))
    assert all(not t["label"].startswith("class_") for r in top for t in r["top_k"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--server", "grpc://127.0.0.1:1", "x.jpg"], "needs --model NAME"),
        (["--server", "ftp://h:1", "--model", "m", "x.jpg"], "no known scheme"),
        (["--model", "m", "models/x", "x.jpg"], "give --server URL too"),
        (["--server", "grpc://127.0.0.1:1", "--model", "m", "--variant", "int8", "x.jpg"], "for local models"),
    ],
)
def test_remote_predict_usage_errors_are_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jpg").write_bytes(b"not checked before the backend")
    (tmp_path / "models").mkdir()
    assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_remote_predict_of_an_unknown_model_is_one_error_line(
    edge: Any, photos: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "--server", edge.rest_url, "--model", "nope", photos[0]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err
