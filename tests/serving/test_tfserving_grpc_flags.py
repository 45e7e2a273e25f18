"""``tensorflow_model_server``'s gRPC flags against a real ``deepclf serve`` over loopback (docs/tfserving-behaviour.md
§1.1, §1.3; TF Serving's model_servers/main.cc and server.cc):

* ``--grpc_socket_path``: gRPC also on a Unix socket (relative or absolute path), called with a real client over
  ``unix:<path>``; with ``--port=-1`` only there.
* ``--grpc_channel_arguments``: TF Serving's ``k=v,k=v`` (32-bit integers as integers) reaches the gRPC server:
  ``grpc.max_receive_message_length`` refuses a larger request, ``grpc.max_connection_age_ms`` closes a connection
  (the client's channel goes back to IDLE); bad syntax is refused with a message that shows the syntax.
* ``--use_alts_credentials``: refused (ALTS needs Google Cloud; gRPC cannot create its credentials elsewhere),
  rather than accepted and ignored (plaintext).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deepclf import protocol as P
from deepclf.errors import UsageError
from deepclf.serving.cli import build_serve_args, config_from_args
from deepclf.serving.config import parse_channel_arguments
from tests.serving.child_server import child_server

HPT = "half_plus_two"


def _predict_hpt(channel: grpc.Channel, values: list[float]) -> list[float]:
    req = P.PredictRequest(model_spec=P.model_spec(HPT))
    req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array(values, np.float32)))
    resp = P.unary_unary(channel, P.PREDICT)(req, timeout=30)
    return list(P.to_ndarray(resp.outputs["y"]))


# -- --grpc_socket_path ------------------------------------------------------------------------------------------------


def test_grpc_socket_path_serves_grpc_on_a_unix_socket(models_root: Path, tmp_path: Path) -> None:
    sock = tmp_path / "run" / "tfs.sock"
    sock.parent.mkdir()
    args = ["--port=0", "--rest_api_port=0", f"--model_base_path={models_root / HPT}", f"--grpc_socket_path={sock}"]
    with child_server(args, tmp_path / "serve.stderr") as (_proc, target, rest):
        assert sock.is_socket()
        with grpc.insecure_channel(f"unix:{sock}") as unix, grpc.insecure_channel(target) as tcp:
            assert _predict_hpt(unix, [1.0, 2.0, 5.0]) == [2.5, 3.0, 4.5]
            assert _predict_hpt(tcp, [1.0]) == [2.5]  # the TCP port too
            status = P.unary_unary(unix, P.GET_MODEL_STATUS)(
                P.GetModelStatusRequest(model_spec=P.model_spec(HPT)), timeout=30
            )
            assert [s.state for s in status.model_version_status] == [P.ModelVersionState.Value("AVAILABLE")]
            health = health_pb2_grpc.HealthStub(unix).Check(health_pb2.HealthCheckRequest(), timeout=30)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert requests.get(f"{rest}/v1/models/{HPT}", timeout=30).status_code == 200


def test_grpc_socket_path_alone_and_relative(
    models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--port=-1 --grpc_socket_path=rel.sock``: gRPC only on the socket, relative to the working directory (TF
    Serving: "Can be either relative or absolute path"); a socket that cannot be made is a clear start-up error."""
    from deepclf.serving import EdgeServer, ServerConfig

    monkeypatch.chdir(tmp_path)
    cfg = config_from_args(
        build_serve_args(
            [f"--model_base_path={models_root / HPT}", "--port=-1", "--rest_api_port=-1", "--grpc_socket_path=rel.sock"]
        )
    )
    cfg.threads = 1
    with EdgeServer(cfg) as srv, grpc.insecure_channel(f"unix:{tmp_path / 'rel.sock'}") as ch:
        assert srv.grpc_port is None and srv.rest_port is None
        assert _predict_hpt(ch, [4.0]) == [4.0]
    missing = str(tmp_path / "no" / "such" / "folder" / "s.sock")
    bad = ServerConfig(
        model_base_path=models_root / HPT, port=None, rest_api_port=None, threads=1, grpc_socket_path=missing
    )
    with pytest.raises(UsageError, match=r"cannot listen on the gRPC socket .*--grpc_socket_path"):
        EdgeServer(bad).start()


# -- --grpc_channel_arguments ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", ()),
        ("grpc.max_connection_age_ms=2000", (("grpc.max_connection_age_ms", 2000),)),
        (
            "grpc.keepalive_time_ms=10000,grpc.primary_user_agent=edge,grpc.http2.max_pings_without_data=-1",
            (
                ("grpc.keepalive_time_ms", 10000),
                ("grpc.primary_user_agent", "edge"),
                ("grpc.http2.max_pings_without_data", -1),
            ),
        ),
        ("big=2147483648,max=2147483647", (("big", "2147483648"), ("max", 2147483647))),  # int32, as SimpleAtoi
        ("a=x=y", (("a", "x=y"),)),
    ],
)
def test_channel_arguments_parse_as_tf_serving(text: str, parsed: tuple[tuple[str, int | str], ...]) -> None:
    assert parse_channel_arguments(text) == parsed
    assert (
        config_from_args(
            build_serve_args(["--model_base_path=/m", f"--grpc_channel_arguments={text}"])
        ).grpc_channel_arguments
        == parsed
    )


@pytest.mark.parametrize("text", ["grpc.max_connection_age_ms", "a=1,", "=5", "a=1,,b=2"])
def test_bad_channel_arguments_are_refused_with_the_syntax(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    from deepclf.cli import main

    assert main(["serve", "--model_base_path=/m", f"--grpc_channel_arguments={text}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not key=value" in err and "grpc.max_connection_age_ms=30000" in err


def _retrying_max_age(call: Callable[[], Any]) -> Any:
    """``call()``, again when a ``grpc.max_connection_age_ms`` GOAWAY ended its connection under it (what that
    argument does; any call may meet it)."""
    for _ in range(10):
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or "max_age" not in str(exc.details()):
                raise
    raise AssertionError("every attempt met a max_age GOAWAY")


def test_channel_arguments_reach_the_grpc_server(models_root: Path, tmp_path: Path) -> None:
    args = [
        "--port=0",
        "--rest_api_port=0",
        f"--model_base_path={models_root / HPT}",
        "--grpc_channel_arguments=grpc.max_receive_message_length=4096,"
        "grpc.max_connection_age_ms=400,grpc.max_connection_age_grace_ms=200",
    ]
    with child_server(args, tmp_path / "serve.stderr") as (_proc, target, _rest), grpc.insecure_channel(target) as ch:
        states: list[str] = []
        lock = threading.Lock()

        def seen(state: grpc.ChannelConnectivity) -> None:
            with lock:
                states.append(state.name)

        ch.subscribe(seen, try_to_connect=False)
        assert _retrying_max_age(lambda: _predict_hpt(ch, [1.0])) == [2.5]
        with pytest.raises(grpc.RpcError) as big:  # 2,000 floats: 8 KB, over the 4,096 bytes asked for
            _retrying_max_age(lambda: _predict_hpt(ch, [1.0] * 2000))
        assert big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # max_connection_age: the server ends the connection (GOAWAY); the channel goes back to IDLE.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if "READY" in states and "IDLE" in states[states.index("READY") :]:
                    break
            time.sleep(0.05)
        with lock:
            assert "IDLE" in states[states.index("READY") :], states
        assert _retrying_max_age(lambda: _predict_hpt(ch, [2.0])) == [3.0]  # and the client reconnects


# -- --use_alts_credentials --------------------------------------------------------------------------------------------


def test_alts_credentials_are_refused_with_the_reason(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from deepclf.cli import main

    assert main(["serve", "--model_base_path=/m", "--use_alts_credentials"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Google Cloud" in err and "--ssl_config_file" in err and "plaintext" in err
    assert main(["serve", "--model_base_path=/m", "--use_alts_credentials=true", "--ssl_config_file=ssl.config"]) == 2
    assert "Either use_alts_credentials must be false or ssl_config_file must be empty." in capsys.readouterr().err
    assert config_from_args(build_serve_args(["--model_base_path=/m", "--use_alts_credentials=false"])).port == 8500
