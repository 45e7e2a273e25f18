"""TF Serving's gRPC API (PredictionService.Predict/Classify/Regress/MultiInference/GetModelMetadata,
ModelService.GetModelStatus) and the standard ``grpc.health.v1`` service, on a synchronous ``grpc.server`` with a
thread pool. This module is the gRPC side (admission, the call's deadline, metrics, the error map); what each call
means is ``grpc_api.GrpcApi``'s.

Handlers are generic (``deepclf.protocol.rpc``): no generated stubs, and the wire format is TF Serving's, so
``tensorflow_serving.apis`` stubs and ``deepclf.clients`` both talk to it::

    server, port, health = create_grpc_server(core, metrics, host="127.0.0.1", port=0)
    server.start(); ...; server.stop(grace=5.0)

Errors go back as TF Serving's status codes (NOT_FOUND, INVALID_ARGUMENT, ...) with a message that says what was
wrong; message size limits are raised well above gRPC's 4 MB default (``grpc_max_message_bytes``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from deepclf import protocol as P
from deepclf.errors import UsageError
from deepclf.protocol.errors import clip_message
from deepclf.protocol.rpc import method as rpc_method
from deepclf.serving.config import bracket_host
from deepclf.serving.core import CallInfo, ServingCore, public_error
from deepclf.serving.grpc_api import GrpcApi
from deepclf.serving.metrics import ServerMetrics
from deepclf.serving.overload import Overloaded, Ticket

SERVICES = (P.PREDICTION_SERVICE, P.MODEL_SERVICE)

#: A "remaining time" longer than this is no deadline at all: grpc reports a call without one as hundreds of
#: years remaining, which would overflow a thread wait (OverflowError: timestamp out of range).
NO_DEADLINE_S = 365 * 24 * 3600.0

#: gRPC's retry pushback: the trailing metadata key a server sets to tell a client when to retry (gRFC A6).
PUSHBACK_KEY = "grpc-retry-pushback-ms"

_Request = TypeVar("_Request", bound=Message)
_Response = TypeVar("_Response", bound=Message)


def _handler(
    core: ServingCore,
    metrics: ServerMetrics,
    method: str,
    fn: Callable[[_Request, CallInfo], _Response],
    access_log: bool,
    *,
    request_class: type[_Request],
    gated: bool = False,
    default_deadline_s: float | None = None,
) -> Callable[[bytes, grpc.ServicerContext], _Response]:
    """The gRPC behaviour of one method: parses the request bytes (a message protobuf refuses is
    INVALID_ARGUMENT, not gRPC's INTERNAL), honours the call's deadline, records metrics, maps errors.
    ``gated``: an inference call, which goes through admission first (``deepclf.serving.overload``: UNAVAILABLE
    with ``grpc-retry-pushback-ms`` when the queue is full or the call could not start before its deadline, or
    ``default_deadline_s`` from now when it has none)."""

    admission = core.admission if gated else None

    def handle(data: bytes, context: grpc.ServicerContext) -> _Response:
        if admission is None:
            return _answer(data, context, None)
        remaining: float | None = context.time_remaining()  # no client deadline: None, or hundreds of years
        if remaining is None or remaining >= NO_DEADLINE_S:
            remaining = default_deadline_s  # admission asks "can it start in time?" against the REST default
        try:
            ticket = admission.admit(len(data), time.monotonic() + remaining if remaining is not None else None)
        except Overloaded as refusal:
            # Refused before parsing, counted without an access-log line (see serving.overload); the pushback
            # tells gRPC clients (ours, and gRPC's own retry policy) when to come back.
            metrics.observe_refused("grpc", method, refusal.reason)
            context.set_trailing_metadata(((PUSHBACK_KEY, refusal.pushback_ms),))
            context.abort(grpc.StatusCode.UNAVAILABLE, refusal.message)
        try:
            return _answer(data, context, ticket)
        finally:
            ticket.finish()

    def _answer(data: bytes, context: grpc.ServicerContext, ticket: Ticket | None) -> _Response:
        t0 = time.perf_counter()
        info = CallInfo(ticket=ticket)
        remaining = context.time_remaining()  # without a client deadline: None, or an enormous number of seconds
        if remaining is not None and remaining < NO_DEADLINE_S:
            info.deadline = time.monotonic() + remaining
        code = "OK"
        try:
            try:
                request = request_class.FromString(data)
            except DecodeError as exc:
                raise P.InvalidInput(f"could not parse the {request_class.__name__}: {exc}") from None
            return fn(request, info)
        except Exception as exc:  # noqa: BLE001 - every error becomes a gRPC status
            err = public_error(exc, context=f"gRPC {method}")
            code = err.code.name
        finally:
            metrics.record(
                api="grpc",
                method=method,
                info=info,
                code=code,
                seconds=time.perf_counter() - t0,
                access_log=access_log,
                client=context.peer(),
            )
        context.abort(P.grpc_code_for(err), clip_message(err.message))  # raises; never returns

    return handle


def create_grpc_server(
    core: ServingCore,
    metrics: ServerMetrics,
    *,
    host: str,
    port: int | None,
    socket_path: str | None = None,
    workers: int = 16,
    max_concurrent_rpcs: int | None = None,
    max_message_bytes: int = 256 * 1024 * 1024,
    default_deadline_s: float | None = 30.0,
    access_log: bool = True,
    credentials: grpc.ServerCredentials | None = None,
    channel_arguments: Sequence[tuple[str, int | str]] = (),
) -> tuple[grpc.Server, int | None, health.HealthServicer]:
    """A started-ready (not yet started) gRPC server, the port it bound (``port=0``: a free one; ``None``: no TCP
    port), its health servicer.

    ``socket_path`` (``--grpc_socket_path``): also listen on that Unix socket (``unix:<path>``, relative to the
    working directory or absolute), with the same credentials, as TF Serving (server.cc).
    ``credentials`` (``grpc.ssl_server_credentials``, see ``deepclf.serving.tls``): a TLS port instead of a plain one.
    ``max_concurrent_rpcs``: gRPC's own bound on RPCs in progress or waiting for one of the ``workers`` threads
    (RESOURCE_EXHAUSTED beyond it, from the gRPC library): calls beyond ``workers`` wait for a thread in gRPC's
    own queue, their messages mostly unread (held by HTTP/2 flow control), before admission sees them.
    ``default_deadline_s``: the deadline admission assumes for a call without one (``--rest_api_timeout_in_ms``).
    ``channel_arguments`` (``--grpc_channel_arguments``, ``deepclf.serving.config.parse_channel_arguments``): gRPC
    server options, after (and replacing) the server's own of the same name.

    The health servicer starts NOT_SERVING for every service; the caller flips it to SERVING once the models are
    AVAILABLE and back when shutting down.
    """
    own = {
        "grpc.max_receive_message_length": max_message_bytes,
        "grpc.max_send_message_length": max_message_bytes,
        # Two servers must never share a port silently (SO_REUSEPORT would let a second bind succeed).
        "grpc.so_reuseport": 0,
    }
    options = [*((k, v) for k, v in own.items() if k not in dict(channel_arguments)), *channel_arguments]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deepclf-grpc"),
        options=options,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )

    def h(service: str, rpc: str, label: str, fn: Callable[[Any, CallInfo], Any], gated: bool = False) -> Any:
        request_class = rpc_method(service, rpc).request_class
        return _handler(
            core,
            metrics,
            label,
            fn,
            access_log,
            request_class=request_class,
            gated=gated,
            default_deadline_s=default_deadline_s,
        )

    api = GrpcApi(core)
    predict, model = P.PREDICTION_SERVICE, P.MODEL_SERVICE
    server.add_generic_rpc_handlers(
        [
            P.generic_handler(
                predict,
                {
                    "Predict": h(predict, "Predict", "predict", api.predict, gated=True),
                    "GetModelMetadata": h(predict, "GetModelMetadata", "metadata", api.metadata),
                    "Classify": h(predict, "Classify", "classify", api.classify, gated=True),
                    "Regress": h(predict, "Regress", "regress", api.regress, gated=True),
                    "MultiInference": h(predict, "MultiInference", "multi_inference", api.multi_inference, gated=True),
                },
                raw_requests=True,
            ),
            P.generic_handler(
                model, {"GetModelStatus": h(model, "GetModelStatus", "status", api.status)}, raw_requests=True
            ),
        ]
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    set_serving(health_servicer, False)
    bound = None
    if port is not None:
        bound = _listen(server, f"{bracket_host(host)}:{port}", credentials)
        if bound == 0:
            raise UsageError(f"cannot bind the gRPC port {host}:{port} (in use, or not an address of this machine)")
    if socket_path and _listen(server, f"unix:{socket_path}", credentials) == 0:
        raise UsageError(
            f"cannot listen on the gRPC socket {socket_path} (--grpc_socket_path): its folder must exist and be "
            "writable, and the path short enough for a Unix socket (about 100 characters)"
        )
    return server, bound, health_servicer


def _listen(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Add a listening address; 0 when gRPC could not bind it."""
    try:
        if credentials is not None:
            return int(server.add_secure_port(address, credentials))
        return int(server.add_insecure_port(address))
    except RuntimeError:  # grpcio raises instead of returning 0 on some failures
        return 0


def set_serving(servicer: health.HealthServicer, serving: bool) -> None:
    """Flip the overall ("") and per-service health status."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICES):
        servicer.set(name, status)


def stop(server: Any, grace: float) -> None:
    """Stop accepting calls, let running ones finish for up to ``grace`` seconds, then return."""
    server.stop(grace).wait(grace + 5.0)
