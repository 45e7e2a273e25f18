"""TF Serving's REST API as a Starlette app (run by uvicorn), plus health, readiness and Prometheus endpoints.

::

    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]              model status (GetModelStatus as JSON)
    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata     model metadata (signature_def)
    POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict      predict, row ("instances") or columnar ("inputs")
    GET  /healthz   the process is alive        GET /readyz   every model has an AVAILABLE version (else 503)
    GET  /monitoring/prometheus/metrics         this server's metrics

    app = create_app(core, metrics, ready=manager.ready, max_body_bytes=64 << 20)

Errors are TF Serving's ``{"error": "<message>"}`` with the HTTP status of ``deepclf.protocol.errors``' table.
The JSON work and inference run in the worker pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deepclf import protocol as P
from deepclf.protocol import rest as R
from deepclf.protocol.messages import SIGNATURE_DEF_FIELD
from deepclf.serving.core import CallInfo, ServingCore, public_error
from deepclf.serving.metrics import CONTENT_TYPE, ServerMetrics, log_access

JSON = "application/json"
_SPEC = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
POST_RE = re.compile(_SPEC + r":(?P<verb>[A-Za-z]+)")
GET_RE = re.compile(_SPEC + r"(?P<metadata>/metadata)?")


class BodyTooLarge(P.ResourceExhausted):
    """The request body is over ``--max_body_bytes``; answered with HTTP 413 (Payload Too Large)."""

    def __init__(self, message: str) -> None:
        # RESOURCE_EXHAUSTED maps to 429 in TF Serving's table; a body over the limit is 413 in HTTP's terms.
        super().__init__(message, http_status=413)


def _error_response(err: P.ServingError) -> Response:
    return Response(P.encode_error(err), status_code=err.http_status, media_type=JSON)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before or while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise P.InvalidInput(f"Content-Length must be an integer, got {declared!r}") from None
        if size > limit:
            raise BodyTooLarge(f"request body is {size} bytes; this server accepts at most {limit} bytes "
                               "(--max_body_bytes); send fewer or smaller images per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body is over {limit} bytes (--max_body_bytes); "
                               "send fewer or smaller images per request")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    core: ServingCore,
    metrics: ServerMetrics,
    *,
    ready: Callable[[], bool],
    max_body_bytes: int,
    access_log: bool = True,
    describe: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    """The REST app of one server; ``ready`` says whether every model is AVAILABLE (for ``/readyz``)."""

    async def in_pool(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(core.executor, fn, *args)

    async def predict(request: Request, m: re.Match, info: CallInfo) -> Response:
        verb = m["verb"].lower()
        if verb in ("classify", "regress"):
            raise P.Unimplemented(f"the {verb} API is not served here (no Example-based signatures); use :predict")
        if verb != "predict":
            raise P.InvalidInput(f"Malformed request: POST {request.url.path} (expected :predict)")
        body = await read_body(request, max_body_bytes)
        version = int(m["version"]) if m["version"] else None
        with core.manager.acquire(m["name"], version, m["label"]) as served:
            info.fill(served)
            key, req = await in_pool(core.decode_rest, served, body, info)
            outputs = await asyncio.wrap_future(core.infer(served, key, req.inputs))
            out = await in_pool(R.encode_predict_response, outputs, req.format)
        return Response(out, media_type=JSON)

    async def get_model(request: Request, m: re.Match, info: CallInfo) -> Response:
        version = int(m["version"]) if m["version"] else None
        if m["metadata"]:
            resp = core.metadata(m["name"], version, m["label"], [SIGNATURE_DEF_FIELD], info)
            return Response(P.model_metadata_to_json(resp), media_type=JSON)
        return Response(P.model_status_to_json(core.status(m["name"], version, m["label"], info)), media_type=JSON)

    async def v1(request: Request) -> Response:
        t0 = time.perf_counter()
        info = CallInfo()
        path, verb = request.url.path, request.method
        method, response = "unknown", None
        try:
            if verb == "POST" and (m := POST_RE.fullmatch(path)):
                method = m["verb"].lower()
                response = await predict(request, m, info)
            elif verb == "GET" and (m := GET_RE.fullmatch(path)):
                method = "metadata" if m["metadata"] else "status"
                response = await get_model(request, m, info)
            elif verb not in ("GET", "POST"):
                response = JSONResponse({"error": f"method {verb} is not allowed; use GET or POST"},
                                        status_code=405, headers={"Allow": "GET, POST"})
            else:
                raise P.InvalidInput(f"Malformed request: {verb} {path}")
            code = "OK" if response.status_code < 400 else "METHOD_NOT_ALLOWED"
        except Exception as exc:  # noqa: BLE001 - every error becomes a TF Serving error body
            err = public_error(exc, context=f"{verb} {path}")
            response, code = _error_response(err), err.code.name
        elapsed = time.perf_counter() - t0
        if method != "unknown":
            metrics.observe(api="rest", method=method, model=info.model, version=info.version, format=info.format,
                            status=code, seconds=elapsed)
        log_access(access_log, api="rest", method=method, http=f"{verb} {path}", status=response.status_code,
                   code=code, model=info.model, version=info.version, format=info.format,
                   signature=info.signature, ms=round(elapsed * 1e3, 3),
                   client=request.client.host if request.client else None,
                   bytes_out=len(response.body) if hasattr(response, "body") else None)
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
        Route("/v1/{rest:path}", v1, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/monitoring/prometheus/metrics", prometheus, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
