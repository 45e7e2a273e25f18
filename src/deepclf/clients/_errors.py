"""The clients' errors: protocol's ``ServingError`` tree plus transport errors, and the two functions that map into it.

Server answers keep their ``deepclf.protocol`` class (``ModelNotFound``, ``InvalidInput``, ``Unavailable``, ...);
failures to get an answer at all become ``TransportError`` subclasses, which are *also* the matching server class
(``ConnectError`` is an ``Unavailable``, ``TimeoutError`` a ``DeadlineExceeded``) so one ``except`` covers both
ways a call can end with that status. Each transport maps in exactly one function::

    except grpc.RpcError as exc:
        raise map_grpc_error(exc) from exc
    if response.status_code >= 400:
        raise map_http_error(response)
    except httpx.HTTPError as exc:
        raise map_http_error(exc) from exc
"""

from __future__ import annotations

import asyncio
import builtins
import sys
from typing import Any

from deepclf.protocol.errors import (
    Code,
    DeadlineExceeded,
    ResourceExhausted,
    ServingError,
    Unavailable,
    Unknown,
    error_for_grpc,
)
from deepclf.protocol.rest import decode_error


class TransportError(ServingError):
    """No usable answer came back: the connection failed, the deadline passed, or the answer was unreadable."""

    code = Code.UNAVAILABLE


class ConnectError(TransportError, Unavailable, builtins.ConnectionError):
    """The server could not be reached, or dropped the connection (refused, reset, DNS). Safe to retry."""

    code = Code.UNAVAILABLE


class TLSError(ConnectError):
    """The TLS handshake failed (unknown CA, wrong host name, missing or rejected client certificate).

    Retrying cannot fix a certificate, so this ``ConnectError`` is never retried.
    """

    code = Code.UNAVAILABLE


class TimeoutError(TransportError, DeadlineExceeded, builtins.TimeoutError):  # noqa: A001 - httpx-style name
    """The call's deadline passed before an answer came back (connect, send or wait)."""

    code = Code.DEADLINE_EXCEEDED


class ProtocolError(TransportError, Unknown):
    """The server answered, but not in TF Serving's format (a proxy's HTML page, truncated JSON, ...)."""

    code = Code.UNKNOWN


#: gRPC's own answer when a server's ``maximum_concurrent_rpcs`` is reached (RESOURCE_EXHAUSTED): the server did
#: no work on the call, so it is as safe to retry as UNAVAILABLE.
GRPC_CONCURRENCY_LIMIT = "Concurrent RPC limit exceeded"


def is_retryable(error: BaseException) -> bool:
    """Whether a failed call may be sent again: UNAVAILABLE / 502 / 503 and connection failures, except TLS, and
    gRPC's "Concurrent RPC limit exceeded" (an overloaded server that never started the call).

    INVALID_ARGUMENT / 400, NOT_FOUND / 404 and every other answer are final; so is a passed deadline (there is
    no time left to retry in).
    """
    if isinstance(error, ResourceExhausted):
        return GRPC_CONCURRENCY_LIMIT in error.message
    return isinstance(error, Unavailable) and not isinstance(error, TLSError)


# gRPC reports "could not connect" and "server said unavailable" with the same code; the details tell them apart.
_GRPC_CONNECT_MARKERS = (
    "failed to connect",
    "connection refused",
    "connection reset",
    "socket closed",
    "broken pipe",
    "dns resolution failed",
    "connection attempt timed out",
    "endpoint closing",
    "goaway",
    "name resolution",
)
_GRPC_TLS_MARKERS = ("handshake", "ssl", "tls", "certificate")


def map_grpc_error(exc: BaseException) -> ServingError:
    """The client error for anything a gRPC call raised (``grpc.RpcError``, ``grpc.aio.AioRpcError``, timeouts).

    Every ``grpc.StatusCode`` maps to its ``ServingError`` class; two are split by who produced them:
    UNAVAILABLE from the channel (connection refused/reset, TLS handshake) is ``ConnectError``/``TLSError``,
    from a server that answered it is ``Unavailable``; DEADLINE_EXCEEDED is always ``TimeoutError`` (gRPC sends
    our deadline along, so a server that gives up on it is our deadline passing too). The server's retry
    pushback (``grpc-retry-pushback-ms``) is kept as ``err.retry_after`` in seconds.
    """
    if isinstance(exc, ServingError):
        return exc
    code_fn = getattr(exc, "code", None)
    if callable(code_fn) and type(exc).__module__.startswith("grpc"):
        err = _map_grpc_status(exc, code_fn())
        err.retry_after = grpc_pushback(exc)
        return err
    if _is_timeout(exc):
        return TimeoutError(str(exc) or "the deadline passed before the gRPC call finished")
    if isinstance(exc, builtins.ConnectionError):
        return ConnectError(str(exc) or type(exc).__name__)
    return Unknown(f"gRPC call failed: {type(exc).__name__}: {exc}")


#: The trailing metadata key of gRPC's retry pushback (gRFC A6): milliseconds to wait, negative for "do not retry".
PUSHBACK_KEY = "grpc-retry-pushback-ms"


def grpc_pushback(exc: Any) -> float | None:
    """The seconds a failed gRPC call's ``grpc-retry-pushback-ms`` asks for (negative or unreadable: -1.0, do not
    retry, as gRFC A6 says), or ``None`` without one."""
    trailing = getattr(exc, "trailing_metadata", None)
    try:
        pairs = (trailing() if callable(trailing) else None) or ()
    except Exception:  # noqa: BLE001 - a call that failed before any metadata came back has none to read
        return None
    for key, value in pairs:
        if key == PUSHBACK_KEY:
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
            return int(text) / 1000 if text.isdigit() else -1.0
    return None


def parse_retry_after(value: str | None) -> float | None:
    """HTTP ``Retry-After`` in seconds: delay-seconds, or an HTTP-date (seconds from now, at least 0); ``None``
    when absent or unreadable (then the client's own backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only for the rare date form

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as _dt

    if when.tzinfo is None:
        return None
    return max(0.0, (when - _dt.datetime.now(_dt.UTC)).total_seconds())


def _map_grpc_status(exc: Any, code: Any) -> ServingError:
    """The ``ServingError`` for a gRPC call that ended with status ``code`` (see ``map_grpc_error``)."""
    details_fn = getattr(exc, "details", None)
    details = (details_fn() if callable(details_fn) else None) or str(exc)
    name = getattr(code, "name", str(code))
    if name == "DEADLINE_EXCEEDED":
        return TimeoutError(f"gRPC deadline exceeded: {details}")
    if name == "UNAVAILABLE":
        low = details.lower()
        if any(m in low for m in _GRPC_CONNECT_MARKERS):
            if any(m in low for m in _GRPC_TLS_MARKERS):
                return TLSError(f"TLS handshake with the server failed: {details}")
            return ConnectError(f"cannot reach the gRPC server: {details}")
    try:
        return error_for_grpc(code, details)
    except ValueError:  # OK is not an error, or an unknown code from a peer
        return Unknown(f"gRPC call failed with status {name}: {details}")


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, (builtins.TimeoutError, asyncio.TimeoutError)):
        return True
    grpc = sys.modules.get("grpc")
    return grpc is not None and isinstance(exc, grpc.FutureTimeoutError)


def map_http_error(failure: Any) -> ServingError:
    """The client error for a failed REST call: an error response, or what ``httpx`` raised.

    * a response (``httpx.Response``; anything with ``status_code`` and ``content``) with a 4xx/5xx status ->
      the ``ServingError`` for that status (``deepclf.protocol``'s one table), carrying the server's
      ``{"error": ...}`` message (or the body text), the status (``err.http_status``) and its ``Retry-After``
      in seconds (``err.retry_after``);
    * timeouts (connect, read, write, pool) -> ``TimeoutError``;
    * TLS failures -> ``TLSError``; refused/reset/DNS/broken connections, proxy failures and protocol breakage
      mid-answer -> ``ConnectError``; an unreadable compressed answer -> ``ProtocolError``; anything else ->
      ``Unknown``.
    """
    if isinstance(failure, ServingError):
        return failure
    status = getattr(failure, "status_code", None)
    if isinstance(status, int) and not isinstance(failure, BaseException):
        if status < 400:
            raise ValueError(f"HTTP status {status} is not an error")
        err = decode_error(status, getattr(failure, "content", b"") or b"")
        headers = getattr(failure, "headers", None)
        err.retry_after = parse_retry_after(headers.get("retry-after")) if headers is not None else None
        return err
    if not isinstance(failure, BaseException):
        raise TypeError(f"expected a response or an exception, got {type(failure).__name__}")
    exc = failure
    text = f"{type(exc).__name__}: {exc}"
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        if isinstance(exc, httpx.TimeoutException):
            return TimeoutError(f"HTTP request timed out: {text}")
        if isinstance(exc, httpx.ConnectError) and _looks_like_tls(exc):
            return TLSError(f"TLS handshake with the server failed: {text}")
        if isinstance(exc, httpx.DecodingError):
            return ProtocolError(f"could not decode the server's answer: {text}")
        if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)):
            return ConnectError(f"cannot reach the HTTP server: {text}")
        return Unknown(f"HTTP request failed: {text}")
    if _is_timeout(exc):
        return TimeoutError(f"HTTP request timed out: {text}")
    if isinstance(exc, builtins.ConnectionError):
        return ConnectError(f"cannot reach the HTTP server: {text}")
    return Unknown(f"HTTP request failed: {text}")


def _looks_like_tls(exc: BaseException) -> bool:
    import ssl  # only needed on this error path

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "ssl" in str(exc).lower() or "certificate" in str(exc).lower()
