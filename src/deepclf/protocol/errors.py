"""One table for errors across gRPC status codes, HTTP statuses and exception types.

Every gRPC status code has one ``ServingError`` class; each carries its canonical code (``Code``, numerically the
gRPC / ``tensorflow.error.Code`` value) and the HTTP status TF Serving's REST server answers with (its
``ToHTTPStatusCode``: FAILED_PRECONDITION and OUT_OF_RANGE are 400, UNKNOWN/INTERNAL/DATA_LOSS 500, ...). The
server raises or maps into this tree; clients turn what comes back into it::

    raise ModelNotFound("model 'flowers' has no version 7; available: [1, 3]")

    except grpc.RpcError as e:                      # client, gRPC
        raise error_for_grpc(e.code(), e.details()) from e
    raise error_for_http(resp.status_code, message)  # client, REST

    err = from_exception(exc)                       # server: any exception -> ServingError
    context.abort(grpc_code_for(err), str(err))     # or: Response(status_code=http_status_for(err))

``InvalidInput`` is also a ``deepclf.errors.InvalidInputError`` and ``ModelNotFound`` a
``deepclf.errors.NotFoundError``, so code that catches the package-wide errors catches these too.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any, ClassVar

from deepclf.errors import (
    DeepclfError,
    ImageError,
    InvalidInputError,
    MissingDependencyError,
    ModelFormatError,
    NotFoundError,
    UsageError,
)


class Code(enum.IntEnum):
    """The canonical status codes: gRPC's, and TF's ``tensorflow.error.Code`` (same numbers)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


#: TF Serving's ToHTTPStatusCode (tensorflow_serving/model_servers/http_server.cc), for every code.
HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,  # "client closed request"
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


class ServingError(DeepclfError):
    """An error with a canonical status code; the base of every error that crosses the wire.

    ``code`` and ``http_status`` are class-level defaults; ``error_for_http`` sets ``http_status`` on an instance
    when the server answered with a status the table maps differently (e.g. 408 -> ``DeadlineExceeded``).
    """

    code: ClassVar[Code] = Code.UNKNOWN
    http_status: int = 500
    #: Seconds the server asked the client to wait before trying again (REST ``Retry-After``, gRPC's
    #: ``grpc-retry-pushback-ms``); ``None``: it did not say. Negative: it asked not to retry at all.
    retry_after: float | None = None

    def __init__(self, message: str = "", *, http_status: int | None = None) -> None:
        super().__init__(message or self.code.name.lower().replace("_", " "))
        self.message = str(self.args[0])
        if http_status is not None:
            self.http_status = int(http_status)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each class's HTTP status comes from the one table, so the two can never disagree.
        cls.http_status = HTTP_STATUS[cls.code]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class Cancelled(ServingError):
    """The call was cancelled (usually by the caller). CANCELLED / 499."""

    code = Code.CANCELLED


class Unknown(ServingError):
    """An error whose kind is not known (e.g. an unexpected status from a peer). UNKNOWN / 500."""

    code = Code.UNKNOWN


class InvalidInput(ServingError, InvalidInputError):
    """The request is malformed or does not match the signature. INVALID_ARGUMENT / 400."""

    code = Code.INVALID_ARGUMENT


class DeadlineExceeded(ServingError):
    """The deadline passed before the call finished. DEADLINE_EXCEEDED / 504."""

    code = Code.DEADLINE_EXCEEDED


class ModelNotFound(ServingError, NotFoundError):
    """No such model, version, version label or signature. NOT_FOUND / 404."""

    code = Code.NOT_FOUND


class AlreadyExists(ServingError):
    """What the call tried to create already exists. ALREADY_EXISTS / 409."""

    code = Code.ALREADY_EXISTS


class PermissionDenied(ServingError):
    """The caller is known but not allowed to do this. PERMISSION_DENIED / 403."""

    code = Code.PERMISSION_DENIED


class ResourceExhausted(ServingError):
    """Out of a resource: queue full, request too large, rate limit. RESOURCE_EXHAUSTED / 429."""

    code = Code.RESOURCE_EXHAUSTED


class FailedPrecondition(ServingError):
    """The server is not in a state to do this (e.g. the model is unusable). FAILED_PRECONDITION / 400."""

    code = Code.FAILED_PRECONDITION


class Aborted(ServingError):
    """The call was aborted (a concurrency conflict); retrying may work. ABORTED / 409."""

    code = Code.ABORTED


class OutOfRange(ServingError):
    """A value is past a valid range. OUT_OF_RANGE / 400."""

    code = Code.OUT_OF_RANGE


class Unimplemented(ServingError):
    """The method or feature is not implemented by this server. UNIMPLEMENTED / 501."""

    code = Code.UNIMPLEMENTED


class Internal(ServingError):
    """A bug or broken invariant on the server. INTERNAL / 500."""

    code = Code.INTERNAL


class Unavailable(ServingError):
    """The service cannot be reached or is not ready (loading, shutting down); retry later. UNAVAILABLE / 503."""

    code = Code.UNAVAILABLE


class DataLoss(ServingError):
    """Unrecoverable data loss or corruption. DATA_LOSS / 500."""

    code = Code.DATA_LOSS


class Unauthenticated(ServingError):
    """The caller did not prove who it is. UNAUTHENTICATED / 401."""

    code = Code.UNAUTHENTICATED


#: The one ServingError class for each non-OK code.
ERROR_FOR_CODE: dict[Code, type[ServingError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidInput,
        DeadlineExceeded,
        ModelNotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}

#: HTTP status -> code, for reading a REST answer. Where TF Serving maps several codes to one status the most
#: common one wins (400 -> INVALID_ARGUMENT, 409 -> ABORTED, 500 -> INTERNAL); statuses TF Serving never sends
#: but proxies do are mapped by meaning.
CODE_FOR_HTTP: dict[int, Code] = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    408: Code.DEADLINE_EXCEEDED,
    409: Code.ABORTED,
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.INVALID_ARGUMENT,
    422: Code.INVALID_ARGUMENT,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    500: Code.INTERNAL,
    501: Code.UNIMPLEMENTED,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


def code_of(code: Any) -> Code:
    """Normalise a status code given as ``Code``, ``grpc.StatusCode``, an int or a name (``"NOT_FOUND"``)."""
    if isinstance(code, Code):
        return code
    value = getattr(code, "value", None)
    if isinstance(value, tuple) and value and isinstance(value[0], int):  # grpc.StatusCode: (int, "name")
        return Code(value[0])
    try:
        if isinstance(code, str):
            return Code[code.strip().upper()]
        return Code(int(code))
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"not a status code: {code!r}; expected one of {[c.name for c in Code]}") from None


def error_for_grpc(code: Any, message: str = "") -> ServingError:
    """The ``ServingError`` for a gRPC status (``grpc.StatusCode``, int or name) and its details.

    >>> error_for_grpc(grpc.StatusCode.NOT_FOUND, "no model 'x'")   # doctest: +SKIP
    ModelNotFound("no model 'x'")
    """
    c = code_of(code)
    if c is Code.OK:
        raise ValueError(f"status OK is not an error (message: {message!r})")
    return ERROR_FOR_CODE[c](message)


def error_for_http(status: int, message: str = "") -> ServingError:
    """The ``ServingError`` for an HTTP error status; unknown 4xx/5xx statuses give ``Unknown``.

    The instance keeps the status it came with (``err.http_status == status``).
    """
    status = int(status)
    if status < 400:
        raise ValueError(f"HTTP status {status} is not an error (message: {message!r})")
    c = CODE_FOR_HTTP.get(status, Code.UNKNOWN)
    return ERROR_FOR_CODE[c](message or f"HTTP {status}", http_status=status)


def _grpc_status_code(c: Code) -> Any:
    import grpc  # only callers that speak gRPC pay for importing it

    for sc in grpc.StatusCode:
        if sc.value[0] == int(c):
            return sc
    raise AssertionError(f"grpc has no StatusCode for {c!r}")  # pragma: no cover - all 17 exist


def grpc_code_for(exc: BaseException) -> Any:
    """The ``grpc.StatusCode`` to answer with for any exception (via ``from_exception``)."""
    return _grpc_status_code(from_exception(exc).code)


def http_status_for(exc: BaseException) -> int:
    """The HTTP status to answer with for any exception (via ``from_exception``)."""
    return from_exception(exc).http_status


def from_exception(exc: BaseException) -> ServingError:
    """Map any exception to a ``ServingError`` (itself when it already is one); the original is ``__cause__``.

    Package errors map by meaning: bad inputs or images -> ``InvalidInput``, missing models -> ``ModelNotFound``,
    unusable models or missing extras -> ``FailedPrecondition``; timeouts -> ``DeadlineExceeded``, cancellation
    -> ``Cancelled``, connection failures -> ``Unavailable``, ``MemoryError`` -> ``ResourceExhausted``,
    ``NotImplementedError`` -> ``Unimplemented``, a ``grpc.RpcError`` -> its own code; anything else is a bug:
    ``Internal``, naming the exception type.
    """
    if isinstance(exc, ServingError):
        return exc
    code_attr = getattr(exc, "code", None)
    if callable(code_attr) and type(exc).__module__.startswith("grpc"):  # grpc.RpcError / AioRpcError
        try:
            details_attr = getattr(exc, "details", None)
            details = details_attr() if callable(details_attr) else str(exc)
            err: ServingError = error_for_grpc(code_attr(), details or "")
        except ValueError:
            err = Unknown(str(exc))
    elif isinstance(exc, (InvalidInputError, ImageError, UsageError)):
        err = InvalidInput(str(exc))
    elif isinstance(exc, NotFoundError):
        err = ModelNotFound(str(exc))
    elif isinstance(exc, (ModelFormatError, MissingDependencyError)):
        err = FailedPrecondition(str(exc))
    elif isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        err = DeadlineExceeded(str(exc) or "the deadline passed before the call finished")
    elif isinstance(exc, asyncio.CancelledError):
        err = Cancelled(str(exc) or "the call was cancelled")
    elif isinstance(exc, ConnectionError):
        err = Unavailable(str(exc) or type(exc).__name__)
    elif isinstance(exc, MemoryError):
        err = ResourceExhausted(str(exc) or "out of memory")
    elif isinstance(exc, NotImplementedError):
        err = Unimplemented(str(exc) or "not implemented")
    else:
        err = Internal(f"{type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


#: Longest error message sent back: messages echo what the client sent (a model name, a path), and gRPC clients
#: refuse status details over 16 KiB ("metadata size exceeds hard limit") instead of showing the error.
MAX_ERROR_MESSAGE = 1000


def clip_message(message: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    """``message`` cut to ``limit`` characters, saying how much was cut."""
    return message if len(message) <= limit else f"{message[:limit]}... ({len(message) - limit} more characters)"
