"""The REST app's ASGI middleware: admission before a body is read, and TF Serving's CORS headers.

::

    app = Starlette(routes=..., middleware=[
        Middleware(CorsHeaders),                                   # --rest_api_enable_cors_support
        Middleware(AdmitFirst, admission=admission, metrics=metrics, timeout_s=30.0, max_body=64 << 20),
    ])

Both act on raw ASGI messages, before Starlette routes the request: a refusal costs no routing, no task for the
handler and no body read.
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.responses import Response

from deepclf import protocol as P
from deepclf.serving.metrics import ServerMetrics
from deepclf.serving.overload import Admission, Overloaded

JSON = "application/json"
#: The POST verbs that run inference: admitted by ``AdmitFirst``, everything else is refused as malformed.
INFERENCE_VERBS = frozenset({"predict", "classify", "regress"})
#: What TF Serving's dispatcher takes (http_rest_api_util.h ``kHTTPRestApiHandlerPathRegex``).
V1_PATH = re.compile(r"(?i)/v1/")

#: The headers TF Serving adds to every REST answer with ``--rest_api_enable_cors_support``
#: (http_rest_api_util.cc ``AddCORSHeaders``).
CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
)
_ORIGIN = re.compile(r"https?://")


def cors_preflight(origin: str) -> tuple[Response, str]:
    """TF Serving's answer to ``OPTIONS`` under ``/v1/`` (http_server.cc): 200 with an empty body when the
    ``Origin`` header contains ``http://`` or ``https://``, else 400 (FAILED_PRECONDITION "Origin header is missing
    in CORS preflight", not in the body: TF Serving writes none); no Content-Type. The status code name is for
    metrics and the access log."""
    if _ORIGIN.search(origin):
        return Response(b"", status_code=200), "OK"
    return Response(b"", status_code=400), "FAILED_PRECONDITION"


class CorsHeaders:
    """ASGI middleware: TF Serving's CORS headers (``CORS_HEADERS``) on every answer under ``/v1/`` (TF Serving's
    dispatcher path, ``(?i)/v1/.*``), errors and refusals included; other paths (``/healthz``, metrics) have none,
    as in TF Serving. Replaces any header of the same name, as TF Serving's ``OverwriteResponseHeader``."""

    _NAMES = frozenset(name.lower().encode() for name, _ in CORS_HEADERS)
    _HEADERS = tuple((name.encode(), value.encode()) for name, value in CORS_HEADERS)  # TF Serving's spelling

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not V1_PATH.match(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self._NAMES]
                message = {**message, "headers": [*kept, *self._HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: Where ``AdmitFirst`` leaves the request's admission ticket in the ASGI scope.
TICKET = "deepclf.admission_ticket"


class AdmitFirst:
    """ASGI middleware: an inference POST is admitted (``deepclf.serving.overload.Admission``) before anything else
    happens, on its ``Content-Length`` and its deadline (``--rest_api_timeout_in_ms``), or answered 503 with
    ``Retry-After`` at once: before routing, before its body is read and without an access-log line (a line per
    refusal would make an overload worse; refusals are counted in the metrics and logged every 10 s).

    The ticket is held until the app has answered, so the bytes of the bodies being read, queued, run and
    encoded stay within ``--max_queued_bytes``.
    """

    def __init__(
        self, app: Any, admission: Admission, metrics: ServerMetrics, timeout_s: float | None, max_body: int
    ) -> None:
        self.app, self.admission, self.metrics, self.timeout_s = app, admission, metrics, timeout_s
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or scope.get("method") != "POST" or path[:11].lower() != "/v1/models/":
            await self.app(scope, receive, send)
            return
        verb = path.rpartition(":")[2].lower()
        if verb not in INFERENCE_VERBS:
            await self.app(scope, receive, send)
            return
        nbytes = 0
        for key, value in scope["headers"]:
            if key == b"content-length":  # a bad or too large value is refused by read_body (400, 413), unread
                nbytes = int(value) if value.isdigit() and len(value) < 19 else 0
                nbytes = nbytes if nbytes <= self.max_body else 0
                break
        deadline = time.monotonic() + self.timeout_s if self.timeout_s is not None else None
        try:
            ticket = self.admission.admit(nbytes, deadline)
        except Overloaded as refusal:
            self.metrics.observe_refused("rest", verb, refusal.reason)
            body = P.encode_error(refusal.message)
            headers = [
                (b"content-type", JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", refusal.retry_after_header.encode()),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        scope[TICKET] = ticket
        try:
            await self.app(scope, receive, send)
        finally:
            ticket.finish()
