"""TF Serving's REST API as a Starlette app (run by uvicorn), plus health, readiness and Prometheus endpoints.

::

    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]              model status (GetModelStatus as JSON)
    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata     model metadata (signature_def)
         ...metadata?fields=deepclf_manifest                     deepclf extension: + the model's manifest.json
    POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict      predict, row ("instances") or columnar ("inputs")
    GET  /healthz   the process is alive        GET /readyz   every model has an AVAILABLE version (else 503)
    GET  /monitoring/prometheus/metrics         this server's metrics

    app = create_app(core, metrics, ready=manager.ready, max_body_bytes=64 << 20)

Errors are TF Serving's ``{"error": "<message>"}`` with the HTTP status of ``deepclf.protocol.errors``' table.
The JSON work and inference run in the worker pool, never on the event loop.

Request bodies may be gzip-compressed (``Content-Encoding: gzip``, as TF Serving accepts). They are inflated as
they arrive, ``max_body_bytes`` applying to both the compressed and the decompressed size (a zip bomb is cut off
at the limit with 413, never inflated in full); a corrupt or truncated gzip stream is a 400 that says so.

deepclf extension: ``GET .../metadata?fields=deepclf_manifest`` (or ``fields=signature_def,deepclf_manifest``)
adds the model's ``manifest.json`` (labels, input size) as ``metadata.deepclf_manifest``. Without ``fields`` the
answer is TF Serving's (``signature_def`` only).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import zlib
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deepclf import protocol as P
from deepclf.protocol import rest as R
from deepclf.protocol.errors import clip_message
from deepclf.protocol.inference import classify_results_to_json, input_from_json, regress_results_to_json
from deepclf.protocol.messages import SIGNATURE_DEF_FIELD, ClassificationResult, RegressionResult, StringValue
from deepclf.serving.config import NOT_IN_TF_SERVING
from deepclf.serving.core import (
    CLASSIFY,
    DEEPCLF_MANIFEST,
    EXAMPLES_INPUT,
    SIGNATURE_DEF,
    CallInfo,
    ServingCore,
    backend_info,
    public_error,
)
from deepclf.serving.metrics import CONTENT_TYPE, LOG_FIELD_MAX, ServerMetrics
from deepclf.serving.overload import Admission, Overloaded

log = logging.getLogger("deepclf.serving")

JSON = "application/json"
#: The POST verbs that run inference: admitted by ``AdmitFirst``, everything else is refused as malformed.
_INFERENCE_VERBS = frozenset({"predict", "classify", "regress"})
_SPEC = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
#: TF Serving's routes (http_rest_api_util.cc) are case-insensitive as a whole (``(?i)``): ``/V1/MODELS/m/VERSIONS/1``
#: routes, and the model name and label keep their case. The verb and ``metadata`` are then compared as written
#: (``:PREDICT`` is a malformed request; ``.../METADATA`` is a status request), as TF Serving's handler does.
POST_RE = re.compile(r"(?i)" + _SPEC + r":(?P<verb>[A-Za-z]+)")
GET_RE = re.compile(r"(?i)" + _SPEC + r"(?P<metadata>/metadata)?")
METADATA = "/metadata"
#: The methods libevent's HTTP server (TF Serving's) passes to the REST handler: all of them reach ``v1``.
HTTP_METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"]
#: What TF Serving's dispatcher takes (http_rest_api_util.h ``kHTTPRestApiHandlerPathRegex``).
V1_PATH = re.compile(r"(?i)/v1/")
#: A GET TF Serving's route takes with no model name (its name group is optional): "Missing model name in request."
_GET_NO_NAME = re.compile(r"/v1/models(?:/versions/\d+|/labels/[^/:]+)?(?:/metadata)?", re.IGNORECASE)
_INT64_MAX = 2**63 - 1


def _version_of(m: re.Match[str]) -> int | None:
    """The path's version number; one past int64 is INVALID_ARGUMENT, as TF Serving's ``ParseModelInfo``."""
    text = m["version"]
    if not text:
        return None
    if int(text) > _INT64_MAX:
        raise P.InvalidInput(f"Failed to convert version: {text} to numeric.")
    return int(text)


class BodyTooLarge(P.ResourceExhausted):
    """The request body is over ``--max_body_bytes``; answered with HTTP 413 (Payload Too Large)."""

    def __init__(self, message: str) -> None:
        # RESOURCE_EXHAUSTED maps to 429 in TF Serving's table; a body over the limit is 413 in HTTP's terms.
        super().__init__(message, http_status=413)


def _error_response(err: P.ServingError) -> Response:
    headers = {"Retry-After": err.retry_after_header} if isinstance(err, Overloaded) else None
    body = P.encode_error(clip_message(err.message))  # messages echo the client's strings: never megabytes back
    return Response(body, status_code=err.http_status, media_type=JSON, headers=headers)


class UnsupportedEncoding(P.InvalidInput):
    """A ``Content-Encoding`` other than gzip/identity; answered with HTTP 415 (Unsupported Media Type)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, http_status=415)


#: A gzip body may inflate to at most this many times its compressed size once it is over ``_RATIO_FREE`` bytes:
#: real tensors and images compress 2-20x; a bomb is ~1000x. Refused with 413 as it inflates, never in full.
MAX_GZIP_RATIO = 250
_RATIO_FREE = 1 << 20


class GzipInflater:
    """Inflates a gzip body chunk by chunk, never producing more than ``limit`` bytes in all (zip-bomb safe),
    nor more than ``MAX_GZIP_RATIO`` times the compressed bytes fed so far (past the first MiB).

    ``feed(chunk)`` returns the bytes the chunk inflates to; ``finish()`` checks the stream ended. Concatenated
    gzip members (valid gzip, what ``cat a.gz b.gz`` makes) are inflated one after the other.
    """

    _WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.compressed = 0
        self._d = zlib.decompressobj(self._WBITS)
        self._started = False

    #: Compressed bytes inflated per step: the ratio cap is checked against what was fed so far, so a bomb is
    #: stopped after ~250 x 16 KiB of output, never after inflating up to ``limit``.
    _STEP = 16 * 1024

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        view = memoryview(data)
        for start in range(0, len(view), self._STEP):
            self._feed(bytes(view[start : start + self._STEP]), out)
        return b"".join(out)

    def _cap(self) -> int:
        """The most this body may inflate to so far: ``limit``, and ``MAX_GZIP_RATIO`` x the compressed bytes
        fed (past the first ``_RATIO_FREE`` bytes)."""
        return min(self.limit, max(_RATIO_FREE, MAX_GZIP_RATIO * self.compressed))

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        self.compressed += len(data)
        while data:
            if self._d.eof:  # the next gzip member (padding zeros after the last one are ignored, as gzip does)
                if not data.strip(b"\x00"):
                    return
                self._d = zlib.decompressobj(self._WBITS)
            self._started = True
            cap = self._cap()
            try:
                # max_length: one byte over the cap is enough to refuse, so nothing beyond it is ever inflated.
                piece = self._d.decompress(data, cap - self.size + 1)
            except zlib.error as exc:
                raise P.InvalidInput(f"the request body is not valid gzip (Content-Encoding: gzip): {exc}") from None
            self.size += len(piece)
            if self.size > self.limit:
                raise BodyTooLarge(
                    f"the gzip request body inflates to over {self.limit} bytes (--max_body_bytes "
                    "applies to the decompressed size); send fewer or smaller images per request"
                )
            if self.size > cap:
                raise BodyTooLarge(
                    f"the gzip request body inflates more than {MAX_GZIP_RATIO} times its compressed size "
                    f"({self.compressed} bytes -> over {self.size}); refused as a compression bomb"
                )
            out.append(piece)
            data = self._d.unconsumed_tail or (self._d.unused_data if self._d.eof else b"")

    def finish(self) -> None:
        if not self._started:
            raise P.InvalidInput("the request body is empty but says Content-Encoding: gzip")
        if not self._d.eof:
            raise P.InvalidInput(
                "the gzip request body is truncated (the gzip stream does not end); send the whole compressed body"
            )


def _content_encodings(request: Request) -> list[str]:
    header = request.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    for c in codings:
        if c not in ("gzip", "x-gzip"):
            raise UnsupportedEncoding(
                f"Content-Encoding {header!r} is not supported; send the body as it is "
                "or gzip-compressed (Content-Encoding: gzip)"
            )
    if len(codings) > 1:
        raise UnsupportedEncoding(f"Content-Encoding {header!r}: a body compressed more than once is not supported")
    return codings


async def read_body(request: Request, limit: int, offload: Callable[..., Any] | None = None) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before or while reading it.

    A gzip body (``Content-Encoding: gzip``) is inflated as it arrives; ``limit`` bounds the compressed and the
    decompressed size alike, ``MAX_GZIP_RATIO`` the ratio. ``offload`` (``await offload(fn, *args)``) runs the
    inflating off the event loop (the worker pool), so a large body never stalls the other connections.
    """
    inflater = GzipInflater(limit) if _content_encodings(request) else None
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise P.InvalidInput(f"Content-Length must be an integer, got {declared!r}") from None
        if size > limit:
            raise BodyTooLarge(
                f"request body is {size} bytes; this server accepts at most {limit} bytes "
                f"(--max_body_bytes{NOT_IN_TF_SERVING}); send fewer or smaller images per request"
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(
                f"request body is over {limit} bytes (--max_body_bytes{NOT_IN_TF_SERVING}); send fewer or smaller "
                "images per request"
            )
        chunks.append(chunk)
    if inflater is None:
        return b"".join(chunks)

    def inflate() -> bytes:
        assert inflater is not None
        out = [inflater.feed(c) for c in chunks]
        inflater.finish()
        return b"".join(out)

    return await offload(inflate) if offload is not None else inflate()


def create_app(
    core: ServingCore,
    metrics: ServerMetrics,
    *,
    ready: Callable[[], bool],
    max_body_bytes: int,
    access_log: bool = True,
    describe: Callable[[], dict[str, Any]] | None = None,
    timeout_ms: int = 30000,
    metrics_path: str | None = "/monitoring/prometheus/metrics",
    cors: bool = False,
) -> Starlette:
    """The REST app of one server; ``ready`` says whether every model is AVAILABLE (for ``/readyz``).

    ``cors`` (``--rest_api_enable_cors_support``): every answer under ``/v1/`` carries TF Serving's CORS headers
    (``CorsHeaders``). An ``OPTIONS`` preflight is answered either way (``cors_preflight``), as TF Serving does.

    ``timeout_ms`` (``--rest_api_timeout_in_ms``; 0 or less: none): a Predict/Classify/Regress call that takes
    longer answers DEADLINE_EXCEEDED / 504, as TF Serving (spec §5.10); its inference is cancelled, so a request
    still queued (batcher or worker pool) when its deadline passes is dropped before it runs.
    ``metrics_path``: where Prometheus metrics are served (``--monitoring_config_file``); ``None``: nowhere (404).
    """
    timeout_s = timeout_ms / 1000 if timeout_ms > 0 else None

    async def in_pool(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(core.executor, fn, *args)

    async def predict(request: Request, m: re.Match[str], info: CallInfo) -> Response:
        verb = m["verb"]
        if verb not in _INFERENCE_VERBS:  # compared as written, as TF Serving's handler does
            raise P.InvalidInput(f"Malformed request: POST {request.url.path}")
        _version_of(m)  # before the body is read, as TF Serving parses the path first
        if timeout_s is not None:
            info.deadline = time.monotonic() + timeout_s
        info.ticket = request.scope.get(TICKET)  # admitted by AdmitFirst before the body is read
        body = await read_body(request, max_body_bytes, in_pool)
        return await _infer(request, m, info, verb, body)

    async def _infer(request: Request, m: re.Match[str], info: CallInfo, verb: str, body: bytes) -> Response:
        version = _version_of(m)
        if verb != "predict":  # tf.Example APIs (spec §5.5)
            sig_name, inp = await in_pool(input_from_json, body, verb)
            with core.manager.acquire(m["name"], version, m["label"]) as served:
                info.fill(served)
                key = info.signature = core.inference_signature(served, sig_name, verb)
                inputs = await in_pool(core.examples_tensor, inp)
                outputs = await asyncio.wrap_future(core.infer(served, key, inputs, info, verb.capitalize()))
                n = len(inputs[EXAMPLES_INPUT])
                if verb == CLASSIFY:
                    result: Any = ClassificationResult()
                    core.fill_classification(outputs, n, result)
                    out = classify_results_to_json(result)
                else:
                    result = RegressionResult()
                    core.fill_regression(outputs, n, result)
                    out = regress_results_to_json(result)
            return Response(out, media_type=JSON)
        with core.manager.acquire(m["name"], version, m["label"]) as served:
            info.fill(served)
            if core.batcher is None:
                # One pool task decodes, runs and encodes: one wait in the pool's queue instead of three, and
                # one wake-up of the event loop (under load, every hop waits behind everyone else's).
                out = await in_pool(core.rest_predict, served, body, info)
            else:
                key, req = await in_pool(core.decode_rest, served, body, info)
                outputs = await asyncio.wrap_future(core.infer(served, key, req.inputs, info, "Predict"))
                out = await in_pool(R.encode_predict_response, outputs, req.format)
        return Response(out, media_type=JSON)

    def _backend_of(resp: P.GetModelMetadataResponse) -> dict[str, str]:
        with core.manager.acquire(resp.model_spec.name, int(resp.model_spec.version.value)) as served:
            return backend_info(served)

    async def get_model(request: Request, m: re.Match[str], info: CallInfo) -> Response:
        version = _version_of(m)
        if m["metadata"] == METADATA:
            fields = request.query_params.get("fields")
            if fields is None:  # TF Serving's answer exactly: model_spec and metadata, nothing else
                resp = core.metadata(m["name"], version, m["label"], [SIGNATURE_DEF_FIELD], info)
                return Response(P.model_metadata_to_json(resp), media_type=JSON)
            wanted = [f.strip() for f in fields.split(",") if f.strip()]
            if not wanted:
                raise P.InvalidInput("?fields= names no metadata field (supported: signature_def, deepclf_manifest)")
            resp = core.metadata(m["name"], version, m["label"], sorted({*wanted, SIGNATURE_DEF}), info)
            doc = orjson.loads(P.model_metadata_to_json(resp))
            if SIGNATURE_DEF not in wanted:
                del doc["metadata"][SIGNATURE_DEF]
            doc["deepclf"] = _backend_of(resp)
            if DEEPCLF_MANIFEST in wanted:
                doc["metadata"][DEEPCLF_MANIFEST] = orjson.loads(
                    StringValue.FromString(resp.metadata[DEEPCLF_MANIFEST].value).value
                )
            return Response(orjson.dumps(doc, option=orjson.OPT_INDENT_2), media_type=JSON)
        return Response(P.model_status_to_json(core.status(m["name"], version, m["label"], info)), media_type=JSON)

    async def v1(request: Request) -> Response:
        t0 = time.perf_counter()
        info = CallInfo()
        path, verb = request.url.path, request.method
        method, response, code = "unknown", None, "OK"
        try:
            if verb == "POST" and (m := POST_RE.fullmatch(path)):
                method, info.model = m["verb"].lower(), m["name"]
                try:
                    # a timeout scope, not wait_for: wait_for runs the call as a task of its own, two more turns of
                    # an event loop that is busy with every other connection under load
                    async with asyncio.timeout(timeout_s):
                        response = await predict(request, m, info)
                except TimeoutError:
                    raise P.DeadlineExceeded(
                        f"Deadline exceeded: the request took longer than --rest_api_timeout_in_ms={timeout_ms}"
                    ) from None
            elif verb == "GET" and (m := GET_RE.fullmatch(path)):
                method, info.model = ("metadata" if m["metadata"] == METADATA else "status"), m["name"]
                response = await get_model(request, m, info)
            elif verb == "OPTIONS":  # a CORS preflight, answered whatever --rest_api_enable_cors_support says
                response, code = cors_preflight(request.headers.get("origin", ""))
            elif verb == "GET" and _GET_NO_NAME.fullmatch(path):
                raise P.InvalidInput("Missing model name in request.")
            else:  # any other method or path under /v1/, as TF Serving's handler answers it
                raise P.InvalidInput(f"Malformed request: {verb} {path}")
        except ClientDisconnect:
            # The client went away before sending its whole body: nobody to answer, nothing went wrong here. One
            # line, no traceback, not counted (TF Serving's HTTP server never dispatches such a request).
            client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
            log.info("%s disconnected before sending the whole request body: %s %s", client, verb, path[:LOG_FIELD_MAX])
            return Response(b"", status_code=499)
        except Exception as exc:  # noqa: BLE001 - every error becomes a TF Serving error body
            err = public_error(exc, context=f"{verb} {path}")
            response, code = _error_response(err), err.code.name
        metrics.record(
            api="rest",
            method=method,
            info=info,
            code=code,
            seconds=time.perf_counter() - t0,
            access_log=access_log,
            counted=method != "unknown",  # unknown URLs are not counted: their verbs would be unbounded labels
            http=f"{verb} {path}",
            status=response.status_code,
            client=request.client.host if request.client else None,
            bytes_out=len(response.body) if hasattr(response, "body") else None,
        )
        return response

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ok = ready()
        doc: dict[str, Any] = {"status": "ready" if ok else "not ready"}
        if describe is not None:
            doc["models"] = describe()
        return JSONResponse(doc, status_code=200 if ok else 503)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "error"
        message = f"no such endpoint: {request.method} {request.url.path}" if status == 404 else str(detail)
        return JSONResponse({"error": message}, status_code=status)

    routes = [
        _case_insensitive(Route("/v1/{rest:path}", v1, methods=HTTP_METHODS)),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if metrics_path is not None:
        routes.append(Route(metrics_path, prometheus, methods=["GET"]))
    admission = getattr(core, "admission", None)
    middleware = [Middleware(CorsHeaders)] if cors else []  # outermost: refusals get the headers too
    if admission is not None:
        middleware.append(
            Middleware(AdmitFirst, admission=admission, metrics=metrics, timeout_s=timeout_s, max_body=max_body_bytes)
        )
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, middleware=middleware)


#: The headers TF Serving adds to every REST answer with ``--rest_api_enable_cors_support``
#: (http_rest_api_util.cc ``AddCORSHeaders``).
CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
)
_ORIGIN = re.compile(r"https?://")


def _case_insensitive(route: Route) -> Route:
    """``route`` matching its path in any case (``/V1/...`` reaches ``v1``, as TF Serving's ``(?i)/v1/.*``)."""
    route.path_regex = re.compile(route.path_regex.pattern, re.IGNORECASE)
    return route


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
        if verb not in _INFERENCE_VERBS:
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
