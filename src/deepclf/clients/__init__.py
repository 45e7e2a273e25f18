"""TF-free clients for TF Serving and the deepclf edge server: REST and gRPC, sync and async, plus in-process.

Four remote clients share one I/O-free core (requests built, answers read, retries decided), so they take the
same arguments and return the same things; ``LocalClient`` does the same over a runner in this process::

    from deepclf.clients import GrpcClient, RestClient, LocalClient, connect

    with GrpcClient("localhost:8500", timeout=5.0) as c:               # or RestClient("http://localhost:8501")
        c.wait_until_available("flowers", timeout=60)
        out = c.predict({"image": batch}, model="flowers", version=1)   # {"probabilities", "classes", "labels"}
        best = c.classify(["rose.jpg"], model="flowers", top_k=3)[0]    # Classification(label, index, score, ...)
        c.classify(["rose.jpg"], model="flowers", label="stable", send="bytes")    # predict_image_bytes
        c.metadata("flowers").input_size(), c.status("flowers").available_versions

    async with AsyncRestClient(["http://edge-1:8501", "http://edge-2:8501"]) as c:   # round-robin
        await c.classify(files, model="flowers")

    connect("grpc://edge:8500")      # a client from a URL: http(s):// -> RestClient, grpc(s):// -> GrpcClient

Every call has a deadline (``timeout=`` on the client, overridable per call) covering its retries; retries use
exponential backoff with jitter (``RetryPolicy``) and only happen on errors that are safe to repeat.

Errors: one tree. Server answers keep ``deepclf.protocol``'s class for their status; failures to get an answer
are ``TransportError``s, each also the class of the status it stands for::

    DeepclfError                                  deepclf.errors: everything the package raises on purpose
    └── ServingError                              .code (gRPC code), .http_status, .message
        ├── InvalidInput          400 INVALID_ARGUMENT      (also deepclf.errors.InvalidInputError)
        ├── ModelNotFound         404 NOT_FOUND             (also deepclf.errors.NotFoundError)
        ├── Unavailable           503 UNAVAILABLE           retried
        │   └── ConnectError      refused / reset / DNS     retried   (also builtins.ConnectionError)
        │       └── TLSError      TLS handshake failed      not retried
        ├── DeadlineExceeded      504 DEADLINE_EXCEEDED
        │   └── TimeoutError      the call's deadline passed          (also builtins.TimeoutError)
        ├── Unknown               500 UNKNOWN
        │   └── ProtocolError     the answer is not TF Serving's format
        ├── FailedPrecondition, ResourceExhausted, Unimplemented, Internal, Unauthenticated,
        │   PermissionDenied, Cancelled, Aborted, AlreadyExists, OutOfRange, DataLoss   (one per status code)
        └── TransportError        base of ConnectError, TimeoutError, ProtocolError: no usable answer

``map_grpc_error(exc)`` and ``map_http_error(response_or_exc)`` are the only places either transport maps into
it. Importing this package never imports TensorFlow; ``grpc`` and ``httpx`` (both REST clients' one HTTP library)
load with the class that needs them.

Layout (private modules): the transports ``_rest``, ``_grpc`` (sync and async each) on ``_base`` (what they share);
``_local`` and ``_connect``; the I/O-free core they loop around, one topic a module: ``_core`` (``ClientCore``, the
state each client holds), ``_retry``, ``_targets``, ``_addressing``, ``_rest_codec``, ``_grpc_codec``, ``_metadata``,
``_classify``; ``_errors`` and ``_models`` (what calls raise and return).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deepclf.clients._core import DEFAULT_TIMEOUT
from deepclf.clients._errors import (
    ConnectError,
    ProtocolError,
    TimeoutError,
    TLSError,
    TransportError,
    is_retryable,
    map_grpc_error,
    map_http_error,
)
from deepclf.clients._models import ModelMetadata, ModelStatus, VersionStatus
from deepclf.clients._rest_codec import GZIP_THRESHOLD
from deepclf.clients._retry import NO_RETRIES, RetryPolicy
from deepclf.protocol.errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidInput,
    ModelNotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    ServingError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)
from deepclf.signatures import Classification

if TYPE_CHECKING:
    from deepclf.clients._connect import RemotePredictor, connect
    from deepclf.clients._grpc import AsyncGrpcClient, GrpcClient
    from deepclf.clients._local import LocalClient
    from deepclf.clients._rest import AsyncRestClient, RestClient

#: Classes loaded on first use, so that a REST-only program never imports grpc (and vice versa).
_LAZY = {
    "RestClient": "deepclf.clients._rest",
    "AsyncRestClient": "deepclf.clients._rest",
    "GrpcClient": "deepclf.clients._grpc",
    "AsyncGrpcClient": "deepclf.clients._grpc",
    "LocalClient": "deepclf.clients._local",
    "connect": "deepclf.clients._connect",
    "RemotePredictor": "deepclf.clients._connect",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'deepclf.clients' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "DEFAULT_TIMEOUT",
    "GZIP_THRESHOLD",
    "NO_RETRIES",
    "Aborted",
    "AlreadyExists",
    "AsyncGrpcClient",
    "AsyncRestClient",
    "Cancelled",
    "Classification",
    "ConnectError",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GrpcClient",
    "Internal",
    "InvalidInput",
    "LocalClient",
    "ModelMetadata",
    "ModelNotFound",
    "ModelStatus",
    "OutOfRange",
    "PermissionDenied",
    "ProtocolError",
    "RemotePredictor",
    "ResourceExhausted",
    "RestClient",
    "RetryPolicy",
    "ServingError",
    "TLSError",
    "TimeoutError",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "VersionStatus",
    "connect",
    "is_retryable",
    "map_grpc_error",
    "map_http_error",
]
