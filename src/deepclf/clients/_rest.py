"""REST clients for TF Serving's HTTP API (and the edge server's): ``RestClient`` (``httpx.Client``) and
``AsyncRestClient`` (``httpx.AsyncClient``), both over ``_rest_codec.RestCodec``::

    with RestClient("http://localhost:8501") as c:
        out = c.predict({"image": batch}, model="flowers")               # {"probabilities": ..., ...}
        out = c.predict({"image_bytes": [jpeg]}, model="flowers", label="stable",
                        signature="predict_image_bytes")                  # sent as {"b64": ...}
        c.classify(["rose.jpg"], model="flowers", top_k=3)[0].label

    async with AsyncRestClient(["http://edge-1:8501", "http://edge-2:8501"], format="columnar") as c:
        await c.metadata("flowers")
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from deepclf.clients._addressing import ModelKey, as_inputs, model_key
from deepclf.clients._base import AsyncClient, SyncClient
from deepclf.clients._core import DEFAULT_TIMEOUT, ClientCore
from deepclf.clients._errors import map_http_error
from deepclf.clients._models import ModelMetadata, ModelStatus
from deepclf.clients._rest_codec import DEFAULT_GZIP_THRESHOLD, HttpRequest, RestCodec, has_unnamed, name_single_output
from deepclf.clients._retry import RetryPolicy, RoundRobin
from deepclf.clients._targets import as_targets, parse_rest_url
from deepclf.errors import UsageError
from deepclf.manifest import SIGNATURE_FLOAT, Manifest
from deepclf.protocol.rest import ROW

PathLike = str | os.PathLike[str]


class _RestSetup:
    """Configuration shared by the sync and async REST clients; each opens its connection pool in ``_open``."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        format: str = ROW,
        gzip_threshold: int | None = DEFAULT_GZIP_THRESHOLD,
        headers: Mapping[str, str] | None = None,
        verify: bool | PathLike = True,
        cert: PathLike | tuple[PathLike, PathLike] | None = None,
        pool_size: int = 10,
    ) -> None:
        self._bases = RoundRobin(parse_rest_url(u) for u in as_targets(base_url))
        self._codec = RestCodec(format=format, gzip_threshold=gzip_threshold, headers=headers)
        self._core = ClientCore(timeout=timeout, retry=retry)
        if not isinstance(verify, (bool, str, os.PathLike)):
            raise UsageError(f"verify must be True, False or a CA bundle path, got {verify!r}")
        self._verify = verify
        self._cert = cert
        self._open(pool_size)

    def _open(self, pool_size: int) -> None:
        raise NotImplementedError

    @property
    def base_urls(self) -> tuple[str, ...]:
        """The servers this client sends to, in round-robin order."""
        return self._bases.items

    def _read_predict(self, content: bytes, key: ModelKey, signature: str) -> dict[str, np.ndarray]:
        out = self._codec.read_predict(content, self._core.metadata_cache.get(key), signature)
        self._core.labels.learn(key, out)
        return out

    def _ssl_context(self, default_ca: str | None = None) -> ssl.SSLContext | bool:
        """An ``SSLContext`` for httpx from ``verify``/``cert`` (httpx 0.28 deprecates paths for both).

        ``verify``: a CA bundle file or a folder of hashed CA certificates (``c_rehash``); True: ``default_ca``
        (a file or folder), or the system's store when None.
        """
        if self._verify is False:
            return False
        ca = default_ca if self._verify is True else os.fspath(self._verify)
        if ca is not None and os.path.isdir(ca):
            ctx = ssl.create_default_context(capath=ca)
        else:
            ctx = ssl.create_default_context(cafile=ca)
        if self._cert is not None:
            certfile, keyfile = self._cert if isinstance(self._cert, tuple) else (self._cert, None)
            ctx.load_cert_chain(os.fspath(certfile), os.fspath(keyfile) if keyfile else None)
        return ctx


class RestClient(_RestSetup, SyncClient):
    """Sync TF Serving REST client on a pooled ``httpx.Client`` (one client can be shared between threads).

    ``base_url``: one URL or several (a list or a comma-separated string), used round-robin, a failed attempt
    moving on to the next. ``timeout``: each call's default deadline in seconds, retries included (httpx
    applies it per connect/read/write, so a server dripping bytes can stretch it). ``retry``: a ``RetryPolicy``
    (default: 5 attempts, 50 ms..1 s backoff, on 503/UNAVAILABLE and connection failures only). ``format``:
    ``"row"`` or ``"columnar"``. ``gzip_threshold``: gzip-compress request bodies above this many bytes (default
    ``GZIP_THRESHOLD`` = 64 KiB; TF Serving and the edge server decode them; ``None``: never).
    ``headers``: sent with every request (auth tokens, tracing). ``verify``: TLS verification: True (certifi's
    CA bundle, or the one ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` names), False, or a CA bundle file or
    hashed-certificate folder; ``cert``: client certificate path, or (cert, key) paths, for mutual TLS.
    ``pool_size``: idle keep-alive connections kept per server (``pool_size`` times the servers in all; more are
    opened when more threads call at once, never waited for); a kept connection lives until the server closes
    it, and one found closed is replaced before it is used. Redirects are followed.
    """

    def _open(self, pool_size: int) -> None:
        import certifi  # httpx's own dependency
        import httpx  # `import deepclf.clients` stays light

        self._httpx = httpx
        # verify=True trusts what it trusted on requests: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when set, else
        # certifi. The SSLContext is explicit, so no environment variable can swap a CA given as ``verify``.
        # Retries are ours (policy + deadline), so the transport's own are off (httpx's default: 0).
        default_ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        self._client = httpx.Client(
            verify=self._ssl_context(default_ca=default_ca),
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=pool_size * len(self._bases), keepalive_expiry=None
            ),
            follow_redirects=True,
        )

    def _send(self, request: HttpRequest, timeout: float | None) -> bytes:
        def attempt(left: float) -> bytes:
            url = self._bases.next() + request.path
            try:
                resp = self._client.request(
                    request.method, url, content=request.content, headers=request.headers, timeout=left
                )
            except self._httpx.HTTPError as exc:
                raise map_http_error(exc) from exc
            if resp.status_code >= 400:
                raise map_http_error(resp)
            return resp.content

        return self._retrying(attempt, timeout)

    def predict(
        self,
        inputs: Mapping[str, Any] | np.ndarray,
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = SIGNATURE_FLOAT,
        format: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` on ``inputs`` (name -> array, or one array for a single-input signature).

        Addresses the latest version, or ``version``, or the version ``label`` points to (``/labels/<label>``).
        Inputs whose names end in ``_bytes`` go as ``{"b64": ...}``. Returns output name -> array.
        """
        key = model_key(model, version, label)
        content = self._send(self._codec.predict(key, as_inputs(inputs), signature=signature, format=format), timeout)
        out = self._read_predict(content, key, signature)
        if has_unnamed(out):
            out = name_single_output(
                out, self.metadata(model, version=version, label=label, timeout=timeout), signature
            )
        return out

    def status(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> ModelStatus:
        """``GET /v1/models/<model>[/versions/<v>|/labels/<l>]``: the versions and their states."""
        key = model_key(model, version, label)
        return self._codec.read_status(self._send(self._codec.status(key), timeout), key)

    def _fetch_metadata(self, key: ModelKey, timeout: float | None) -> ModelMetadata:
        return self._codec.read_metadata(self._send(self._codec.metadata(key), timeout), key)

    def _fetch_manifest(self, key: ModelKey, timeout: float | None) -> Manifest | None:
        return self._codec.read_manifest(self._send(self._codec.manifest(key), timeout))

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()


class AsyncRestClient(_RestSetup, AsyncClient):
    """Async TF Serving REST client on ``httpx.AsyncClient``; same options and methods as ``RestClient``
    (awaitable), and the deadline is a true total (``asyncio.wait_for`` around each attempt)."""

    def _open(self, pool_size: int) -> None:
        import httpx  # `import deepclf.clients` stays light

        self._httpx = httpx
        self._client = httpx.AsyncClient(
            verify=self._ssl_context(),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
        )

    async def _send(self, request: HttpRequest, timeout: float | None) -> bytes:
        async def attempt(left: float) -> bytes:
            url = self._bases.next() + request.path
            try:
                resp = await self._client.request(
                    request.method, url, content=request.content, headers=request.headers, timeout=left
                )
            except self._httpx.HTTPError as exc:
                raise map_http_error(exc) from exc
            if resp.status_code >= 400:
                raise map_http_error(resp)
            return resp.content

        return await self._retrying(attempt, timeout)

    async def predict(
        self,
        inputs: Mapping[str, Any] | np.ndarray,
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = SIGNATURE_FLOAT,
        format: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """As ``RestClient.predict``."""
        key = model_key(model, version, label)
        content = await self._send(
            self._codec.predict(key, as_inputs(inputs), signature=signature, format=format), timeout
        )
        out = self._read_predict(content, key, signature)
        if has_unnamed(out):
            md = await self.metadata(model, version=version, label=label, timeout=timeout)
            out = name_single_output(out, md, signature)
        return out

    async def status(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> ModelStatus:
        """As ``RestClient.status``."""
        key = model_key(model, version, label)
        return self._codec.read_status(await self._send(self._codec.status(key), timeout), key)

    async def _fetch_metadata(self, key: ModelKey, timeout: float | None) -> ModelMetadata:
        return self._codec.read_metadata(await self._send(self._codec.metadata(key), timeout), key)

    async def _fetch_manifest(self, key: ModelKey, timeout: float | None) -> Manifest | None:
        return self._codec.read_manifest(await self._send(self._codec.manifest(key), timeout))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
