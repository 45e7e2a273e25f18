"""Every gRPC status code and every HTTP error class maps into the one exception tree, each from a real failure.

The servers here are real (grpc on loopback, stdlib HTTP on loopback) but answer with whatever status the test asks
for (the model name carries it), which no model server can be made to do on demand.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from deepclf import protocol as P
from deepclf.clients import (
    NO_RETRIES,
    AsyncGrpcClient,
    AsyncRestClient,
    ConnectError,
    GrpcClient,
    ProtocolError,
    RestClient,
    RetryPolicy,
    ServingError,
    TimeoutError,
    TLSError,
    TransportError,
    Unavailable,
    map_grpc_error,
    map_http_error,
)
from deepclf.protocol.errors import CODE_FOR_HTTP, ERROR_FOR_CODE, Code, DeadlineExceeded, Unknown

from .conftest import free_port

BATCH = {"image": np.zeros((1, 2, 2, 3), np.float32)}


# ------------------------------------------------------------------------------------------------------ gRPC


@pytest.fixture(scope="module")
def abort_server() -> Iterator[str]:
    """A gRPC server whose Predict fails with the status code named by the request's model name."""

    def predict(request, context):
        name = request.model_spec.name
        GRPC_CALLS[name] = GRPC_CALLS.get(name, 0) + 1
        if name == "SLOW":
            time.sleep(1.0)
            return P.PredictResponse()
        context.abort(getattr(grpc.StatusCode, name), f"server says {name}")

    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers([P.generic_handler(P.PREDICTION_SERVICE, {"Predict": predict})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


GRPC_CALLS: dict[str, int] = {}
HTTP_CALLS: dict[str, int] = {}
NON_OK = [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK]


@pytest.mark.parametrize("code", NON_OK, ids=lambda c: c.name)
def test_every_grpc_status_from_a_server_maps_to_its_class(abort_server: str, code: grpc.StatusCode) -> None:
    with GrpcClient(abort_server, retry=NO_RETRIES, timeout=5) as c, pytest.raises(ServingError) as info:
        c.predict(BATCH, model=code.name)
    err = info.value
    expected = TimeoutError if code is grpc.StatusCode.DEADLINE_EXCEEDED else ERROR_FOR_CODE[Code(code.value[0])]
    assert type(err) is expected
    assert err.code == Code(code.value[0])
    assert f"server says {code.name}" in err.message
    assert isinstance(err.__cause__, grpc.RpcError)
    # A server that answers UNAVAILABLE is not a connection failure.
    assert not isinstance(err, TransportError) or code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_grpc_transport_failures_are_transport_errors(abort_server: str) -> None:
    refused = f"127.0.0.1:{free_port()}"
    with GrpcClient(refused, retry=NO_RETRIES, timeout=5) as c, pytest.raises(ConnectError) as info:
        c.status("flowers")
    assert isinstance(info.value, Unavailable) and isinstance(info.value, ConnectionError)
    with GrpcClient(abort_server, retry=NO_RETRIES, timeout=0.2) as c, pytest.raises(TimeoutError) as info2:
        c.predict(BATCH, model="SLOW")
    assert isinstance(info2.value, DeadlineExceeded) and isinstance(info2.value, builtins_timeout())


async def test_async_grpc_maps_the_same_way(abort_server: str) -> None:
    async with AsyncGrpcClient(abort_server, retry=NO_RETRIES, timeout=5) as c:
        with pytest.raises(P.InvalidInput, match="server says INVALID_ARGUMENT"):
            await c.predict(BATCH, model="INVALID_ARGUMENT")
        with pytest.raises(Unavailable) as info:
            await c.predict(BATCH, model="UNAVAILABLE")
        assert not isinstance(info.value, ConnectError)
    async with AsyncGrpcClient(f"127.0.0.1:{free_port()}", retry=NO_RETRIES, timeout=5) as c:
        with pytest.raises(ConnectError):
            await c.status("flowers")


def test_map_grpc_error_covers_plain_exceptions() -> None:
    assert isinstance(map_grpc_error(grpc.FutureTimeoutError()), TimeoutError)
    assert isinstance(map_grpc_error(ConnectionResetError("reset")), ConnectError)
    assert type(map_grpc_error(RuntimeError("boom"))) is Unknown
    err = P.ModelNotFound("x")
    assert map_grpc_error(err) is err


def builtins_timeout() -> type:
    import builtins

    return builtins.TimeoutError


# ------------------------------------------------------------------------------------------------------ HTTP

#: Every status TF Serving sends, the ones proxies add, and two the table does not know (-> Unknown).
HTTP_ERRORS = sorted(set(CODE_FOR_HTTP) | {418, 599})


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /v1/models/<what>: <what> is an HTTP status to answer with, or a failure to produce."""

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # http.server's name
        what = self.path.rsplit("/", 1)[-1]
        HTTP_CALLS[what] = HTTP_CALLS.get(what, 0) + 1
        if what == "slow":
            time.sleep(1.0)
            what = "200"
        if what == "reset":  # close the socket without an answer
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if what == "html200":
            return self._send(200, b"<html>proxy login</html>", "text/html")
        if what == "html502":
            return self._send(502, b"<html><body>Bad Gateway</body></html>", "text/html")
        status = int(what)
        self._send(
            status, b'{"error": "server says %d"}' % status if status >= 400 else b'{"model_version_status": []}'
        )

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # clients that time out close early: expected
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("status", HTTP_ERRORS)
def test_every_http_error_status_maps_to_its_class(http_server: str, status: int) -> None:
    with RestClient(http_server, retry=NO_RETRIES) as c, pytest.raises(ServingError) as info:
        c.status(str(status))
    err = info.value
    assert type(err) is ERROR_FOR_CODE[CODE_FOR_HTTP.get(status, Code.UNKNOWN)]
    assert err.http_status == status and err.message == f"server says {status}"


async def test_async_rest_maps_statuses_the_same_way(http_server: str) -> None:
    async with AsyncRestClient(http_server, retry=NO_RETRIES) as c:
        for status in (400, 404, 503, 504):
            with pytest.raises(ServingError) as info:
                await c.status(str(status))
            assert type(info.value) is ERROR_FOR_CODE[CODE_FOR_HTTP[status]] and info.value.http_status == status


def test_http_transport_failures(http_server: str) -> None:
    with RestClient(f"http://127.0.0.1:{free_port()}", retry=NO_RETRIES) as c, pytest.raises(ConnectError):
        c.status("x")
    with RestClient(http_server, retry=NO_RETRIES) as c:
        with pytest.raises(ConnectError):
            c.status("reset")
        with pytest.raises(TimeoutError):
            c.status("slow", timeout=0.2)
        with pytest.raises(ProtocolError, match="not TF Serving JSON"):
            c.status("html200")
        with pytest.raises(Unavailable, match="Bad Gateway") as info:
            c.status("html502")
        assert info.value.http_status == 502 and not isinstance(info.value, TransportError)
    https = http_server.replace("http://", "https://")
    with RestClient(https, retry=NO_RETRIES) as c, pytest.raises(TLSError):
        c.status("200")  # TLS to a plain-HTTP server: the handshake fails


async def test_async_http_transport_failures(http_server: str) -> None:
    async with AsyncRestClient(f"http://127.0.0.1:{free_port()}", retry=NO_RETRIES) as c:
        with pytest.raises(ConnectError):
            await c.status("x")
    async with AsyncRestClient(http_server, retry=NO_RETRIES) as c:
        with pytest.raises(ConnectError):
            await c.status("reset")
        with pytest.raises(TimeoutError):
            await c.status("slow", timeout=0.2)
        with pytest.raises(ProtocolError):
            await c.status("html200")
    async with AsyncRestClient(http_server.replace("http://", "https://"), retry=NO_RETRIES) as c:
        with pytest.raises(TLSError):
            await c.status("200")


def test_map_http_error_rejects_what_is_not_a_failure() -> None:
    class Ok:
        status_code, content = 200, b"{}"

    with pytest.raises(ValueError, match="200"):
        map_http_error(Ok())
    assert isinstance(map_http_error(ConnectionRefusedError()), ConnectError)
    assert isinstance(map_http_error(builtins_timeout()()), TimeoutError)


# --------------------------------------------------------------------------------------------------- retries

QUICK = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)


@pytest.mark.parametrize(("status", "attempts"), [(503, 4), (502, 4), (400, 1), (404, 1), (429, 1), (500, 1)])
def test_rest_retries_only_what_is_safe(http_server: str, status: int, attempts: int) -> None:
    HTTP_CALLS.pop(str(status), None)
    with RestClient(http_server, retry=QUICK) as c, pytest.raises(ServingError):
        c.status(str(status))
    assert HTTP_CALLS[str(status)] == attempts


@pytest.mark.parametrize(
    ("code", "attempts"),
    [("UNAVAILABLE", 4), ("INVALID_ARGUMENT", 1), ("NOT_FOUND", 1), ("INTERNAL", 1), ("RESOURCE_EXHAUSTED", 1)],
)
def test_grpc_retries_only_what_is_safe(abort_server: str, code: str, attempts: int) -> None:
    GRPC_CALLS.pop(code, None)
    with GrpcClient(abort_server, retry=QUICK) as c, pytest.raises(ServingError) as info:
        c.predict(BATCH, model=code)
    assert GRPC_CALLS[code] == attempts
    if attempts > 1:
        assert "gave up after 4 attempts" in "".join(info.value.__notes__)


async def test_async_clients_retry_the_same_way(http_server: str, abort_server: str) -> None:
    HTTP_CALLS.pop("503", None)
    GRPC_CALLS.pop("UNAVAILABLE", None)
    GRPC_CALLS.pop("NOT_FOUND", None)
    async with AsyncRestClient(http_server, retry=QUICK) as r, AsyncGrpcClient(abort_server, retry=QUICK) as g:
        with pytest.raises(Unavailable):
            await r.status("503")
        with pytest.raises(Unavailable):
            await g.predict(BATCH, model="UNAVAILABLE")
        with pytest.raises(P.ModelNotFound):
            await g.predict(BATCH, model="NOT_FOUND")
    assert (HTTP_CALLS["503"], GRPC_CALLS["UNAVAILABLE"], GRPC_CALLS["NOT_FOUND"]) == (4, 4, 1)
