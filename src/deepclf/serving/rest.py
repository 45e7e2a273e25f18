"""TF Serving's REST API as a Starlette app (run by uvicorn), plus health, readiness and Prometheus endpoints.

::

    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]              model status (GetModelStatus as JSON)
    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata     model metadata (signature_def)
         ...metadata?fields=deepclf_manifest                     deepclf extension: + the model's manifest.json
    POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict      predict, row ("instances") or columnar ("inputs")
    POST /v1/models/{m}[/versions/{v}|/labels/{l}]:classify     classify / regress tf.Examples
    GET  /healthz   the process is alive        GET /readyz   every model has an AVAILABLE version (else 503)
    GET  /monitoring/prometheus/metrics         this server's metrics

    rest = RestApp(core, metrics, ready=manager.ready, max_body_bytes=64 << 20)
    app = rest.asgi()                  # what uvicorn runs; create_app(core, metrics, ...) does both steps
    await rest.v1(request)             # each handler is a method, callable with a Starlette Request

``RestApp`` is the HTTP side: routing, the request body (``body``), the call's timeout, errors as TF Serving's
``{"error": "<message>"}`` with the HTTP status of ``deepclf.protocol.errors``' table, metrics and the access log.
What a call means is ``rest_api.RestApi``'s (JSON in, ``ServingCore``, JSON out); admission and CORS headers are
middleware (``rest_middleware``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deepclf import protocol as P
from deepclf.protocol.errors import clip_message
from deepclf.serving.body import BodyTooLarge, GzipInflater, read_body
from deepclf.serving.core import CallInfo, ServingCore, public_error
from deepclf.serving.metrics import CONTENT_TYPE, LOG_FIELD_MAX, ServerMetrics
from deepclf.serving.overload import Overloaded
from deepclf.serving.rest_api import RestApi
from deepclf.serving.rest_middleware import INFERENCE_VERBS, JSON, TICKET, AdmitFirst, CorsHeaders, cors_preflight

# BodyTooLarge and GzipInflater are the body module's; importable from here as they were before it existed.
__all__ = ["GET_RE", "POST_RE", "BodyTooLarge", "GzipInflater", "RestApp", "create_app"]

log = logging.getLogger("deepclf.serving")

_SPEC = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
#: TF Serving's routes (http_rest_api_util.cc) are case-insensitive as a whole (``(?i)``): ``/V1/MODELS/m/VERSIONS/1``
#: routes, and the model name and label keep their case. The verb and ``metadata`` are then compared as written
#: (``:PREDICT`` is a malformed request; ``.../METADATA`` is a status request), as TF Serving's handler does.
POST_RE = re.compile(r"(?i)" + _SPEC + r":(?P<verb>[A-Za-z]+)")
GET_RE = re.compile(r"(?i)" + _SPEC + r"(?P<metadata>/metadata)?")
METADATA = "/metadata"
#: The methods libevent's HTTP server (TF Serving's) passes to the REST handler: all of them reach ``v1``.
HTTP_METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"]
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


def _error_response(err: P.ServingError) -> Response:
    headers = {"Retry-After": err.retry_after_header} if isinstance(err, Overloaded) else None
    body = P.encode_error(clip_message(err.message))  # messages echo the client's strings: never megabytes back
    return Response(body, status_code=err.http_status, media_type=JSON, headers=headers)


class RestApp:
    """The REST app of one server: its handlers are methods (each testable with a Starlette ``Request``), ``asgi()``
    the Starlette app uvicorn runs.

    ``ready`` says whether every model is AVAILABLE (``/readyz``); ``describe`` lists the loaded versions there.
    ``cors`` (``--rest_api_enable_cors_support``): every answer under ``/v1/`` carries TF Serving's CORS headers
    (``CorsHeaders``). An ``OPTIONS`` preflight is answered either way (``cors_preflight``), as TF Serving does.
    ``timeout_ms`` (``--rest_api_timeout_in_ms``; 0 or less: none): a Predict/Classify/Regress call that takes
    longer answers DEADLINE_EXCEEDED / 504, as TF Serving (spec §5.10); its inference is cancelled, so a request
    still queued (batcher or worker pool) when its deadline passes is dropped before it runs.
    ``metrics_path``: where Prometheus metrics are served (``--monitoring_config_file``); ``None``: nowhere (404).
    """

    def __init__(
        self,
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
    ) -> None:
        self.core, self.metrics, self.api = core, metrics, RestApi(core)
        self.ready, self.describe = ready, describe
        self.max_body_bytes, self.access_log, self.metrics_path, self.cors = (
            max_body_bytes,
            access_log,
            metrics_path,
            cors,
        )
        self.timeout_ms = timeout_ms
        self.timeout_s = timeout_ms / 1000 if timeout_ms > 0 else None

    def asgi(self) -> Starlette:
        """The Starlette app: the routes below, admission (when the core has it) and CORS as middleware."""
        routes = [
            _case_insensitive(Route("/v1/{rest:path}", self.v1, methods=HTTP_METHODS)),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]
        if self.metrics_path is not None:
            routes.append(Route(self.metrics_path, self.prometheus, methods=["GET"]))
        admission = getattr(self.core, "admission", None)
        middleware = [Middleware(CorsHeaders)] if self.cors else []  # outermost: refusals get the headers too
        if admission is not None:
            middleware.append(
                Middleware(
                    AdmitFirst,
                    admission=admission,
                    metrics=self.metrics,
                    timeout_s=self.timeout_s,
                    max_body=self.max_body_bytes,
                )
            )
        return Starlette(routes=routes, exception_handlers={HTTPException: self.http_error}, middleware=middleware)

    # -- /v1/ ---------------------------------------------------------------------------------------------------

    async def v1(self, request: Request) -> Response:
        """Everything under ``/v1/``, dispatched as TF Serving's handler dispatches it; errors become TF Serving's
        error bodies; every call is counted and logged."""
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
                    async with asyncio.timeout(self.timeout_s):
                        response = await self.inference(request, m, info)
                except TimeoutError:
                    raise P.DeadlineExceeded(
                        f"Deadline exceeded: the request took longer than --rest_api_timeout_in_ms={self.timeout_ms}"
                    ) from None
            elif verb == "GET" and (m := GET_RE.fullmatch(path)):
                method, info.model = ("metadata" if m["metadata"] == METADATA else "status"), m["name"]
                response = self.get_model(request, m, info)
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
        self.metrics.record(
            api="rest",
            method=method,
            info=info,
            code=code,
            seconds=time.perf_counter() - t0,
            access_log=self.access_log,
            counted=method != "unknown",  # unknown URLs are not counted: their verbs would be unbounded labels
            http=f"{verb} {path}",
            status=response.status_code,
            client=request.client.host if request.client else None,
            bytes_out=len(response.body) if hasattr(response, "body") else None,
        )
        return response

    async def inference(self, request: Request, m: re.Match[str], info: CallInfo) -> Response:
        """``POST .../models/{m}:predict|classify|regress`` (``m``: a ``POST_RE`` match of the path)."""
        verb = m["verb"]
        if verb not in INFERENCE_VERBS:  # compared as written, as TF Serving's handler does
            raise P.InvalidInput(f"Malformed request: POST {request.url.path}")
        version = _version_of(m)  # before the body is read, as TF Serving parses the path first
        if self.timeout_s is not None:
            info.deadline = time.monotonic() + self.timeout_s
        info.ticket = request.scope.get(TICKET)  # admitted by AdmitFirst before the body is read
        body = await read_body(request, self.max_body_bytes, self.api.in_pool)
        if verb == "predict":
            out = await self.api.predict(m["name"], version, m["label"], body, info)
        else:  # tf.Example APIs (spec §5.5)
            out = await self.api.examples(verb, m["name"], version, m["label"], body, info)
        return Response(out, media_type=JSON)

    def get_model(self, request: Request, m: re.Match[str], info: CallInfo) -> Response:
        """``GET .../models/{m}[/metadata]`` (``m``: a ``GET_RE`` match of the path)."""
        version = _version_of(m)
        if m["metadata"] == METADATA:
            out = self.api.metadata(m["name"], version, m["label"], request.query_params.get("fields"), info)
        else:
            out = self.api.status(m["name"], version, m["label"], info)
        return Response(out, media_type=JSON)

    # -- health, readiness, metrics ----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: 200 while the process runs."""
        return JSONResponse({"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        """``GET /readyz``: 200 when every model has an AVAILABLE version, else 503; the loaded versions."""
        ok = self.ready()
        doc: dict[str, Any] = {"status": "ready" if ok else "not ready"}
        if self.describe is not None:
            doc["models"] = self.describe()
        return JSONResponse(doc, status_code=200 if ok else 503)

    async def prometheus(self, request: Request) -> Response:
        """The metrics page (TF Serving's families, then ours), in Prometheus' text format."""
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own errors (no such route, method not allowed) as TF Serving-style error bodies."""
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "error"
        message = f"no such endpoint: {request.method} {request.url.path}" if status == 404 else str(detail)
        return JSONResponse({"error": message}, status_code=status)


def create_app(core: ServingCore, metrics: ServerMetrics, **options: Any) -> Starlette:
    """``RestApp(core, metrics, **options).asgi()``: the REST app of one server (options as ``RestApp`` takes)."""
    return RestApp(core, metrics, **options).asgi()


def _case_insensitive(route: Route) -> Route:
    """``route`` matching its path in any case (``/V1/...`` reaches ``v1``, as TF Serving's ``(?i)/v1/.*``)."""
    route.path_regex = re.compile(route.path_regex.pattern, re.IGNORECASE)
    return route
