"""gRPC clients for TF Serving's PredictionService/ModelService (and the edge server's): ``GrpcClient`` (grpcio)
and ``AsyncGrpcClient`` (grpc.aio). No generated stubs: paths and (de)serializers come from ``deepclf.protocol``::

    with GrpcClient("localhost:8500") as c:
        out = c.predict({"image": batch}, model="flowers", version=3)
        c.status("flowers").available_versions

    tls = GrpcClient("grpcs://edge:8500", root_certificates="ca.pem",
                     private_key="client.key", certificate_chain="client.pem")    # mutual TLS
    many = GrpcClient(["edge-1:8500", "edge-2:8500"], metadata={"authorization": "Bearer ..."})
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import grpc.aio
import numpy as np

from deepclf.clients._addressing import ModelKey, as_inputs, model_key, single_input_name
from deepclf.clients._base import AsyncClient, SyncClient
from deepclf.clients._core import DEFAULT_TIMEOUT, ClientCore
from deepclf.clients._errors import map_grpc_error
from deepclf.clients._grpc_codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    grpc_manifest_request,
    grpc_metadata_request,
    grpc_predict_request,
    grpc_read_manifest,
    grpc_read_predict,
    grpc_status_request,
)
from deepclf.clients._metadata import metadata_from_proto, status_from_proto
from deepclf.clients._models import ModelMetadata, ModelStatus
from deepclf.clients._retry import RetryPolicy, RoundRobin
from deepclf.clients._targets import as_targets, parse_grpc_target
from deepclf.errors import UsageError
from deepclf.fsutil import read_bytes_or_path
from deepclf.manifest import SIGNATURE_FLOAT, Manifest
from deepclf.protocol import rpc

PemSource = bytes | str | os.PathLike[str]


def _pem(value: PemSource | None, what: str) -> bytes | None:
    """PEM bytes as given, or read from a path (None stays None: that credential is not used)."""
    return None if value is None else read_bytes_or_path(value, what)


class _GrpcSetup:
    """Configuration shared by the sync and async gRPC clients: targets, credentials, channel options; each
    client opens its channels in ``_open`` (the async one defers that to its event loop)."""

    _stubs: RoundRobin[_Stubs] | None

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        tls: bool | None = None,
        root_certificates: PemSource | None = None,
        private_key: PemSource | None = None,
        certificate_chain: PemSource | None = None,
        server_name: str | None = None,
        metadata: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._core = ClientCore(timeout=timeout, retry=retry)
        parsed = [parse_grpc_target(t) for t in as_targets(target)]
        schemes = {s for _, s in parsed if s is not None}
        if len(schemes) > 1:
            raise UsageError(f"targets mix grpc:// and grpcs://: {target!r}; use one kind")
        has_certs = any(x is not None for x in (root_certificates, private_key, certificate_chain))
        scheme_tls = schemes.pop() if schemes else None
        if (scheme_tls is not None and tls is not None and scheme_tls != tls) or (
            (tls is False or scheme_tls is False) and has_certs
        ):
            raise UsageError(
                f"TLS settings contradict each other (target {target!r}, tls={tls!r}, certificates "
                f"given: {has_certs}); use grpcs:// or tls=True with certificates"
            )
        if tls is None:
            tls = bool(scheme_tls) or has_certs
        if (private_key is None) != (certificate_chain is None):
            raise UsageError("mutual TLS needs both private_key and certificate_chain (the client certificate)")
        self.targets: tuple[str, ...] = tuple(t for t, _ in parsed)
        self.tls = tls
        self._credentials = (
            grpc.ssl_channel_credentials(
                root_certificates=_pem(root_certificates, "root certificates"),
                private_key=_pem(private_key, "the client private key"),
                certificate_chain=_pem(certificate_chain, "the client certificate chain"),
            )
            if tls
            else None
        )
        if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int) or max_message_bytes < 1:
            raise UsageError(f"max_message_bytes must be a positive byte count, got {max_message_bytes!r}")
        policy = self._core.retry
        self._options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            # gRPC's own reconnect backoff starts at 1 s and grows to 120 s; while it waits, calls fail fast, so
            # align it with our retry policy or a server that comes back would be ignored for minutes.
            ("grpc.initial_reconnect_backoff_ms", max(10, int(policy.initial_backoff * 1000))),
            ("grpc.min_reconnect_backoff_ms", max(10, int(policy.initial_backoff * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(10, int(policy.max_backoff * 1000))),
        ]
        if server_name:
            self._options.append(("grpc.ssl_target_name_override", server_name))
        self._options += list(options)
        pairs = list(metadata.items()) if isinstance(metadata, Mapping) else list(metadata or [])
        for k, _ in pairs:
            if not isinstance(k, str) or k != k.lower():
                raise UsageError(f"gRPC metadata keys must be lower-case strings, got {k!r}")
        self._metadata: tuple[tuple[str, str], ...] | None = tuple(pairs) or None
        self._stubs = self._open()

    def _open(self) -> RoundRobin[_Stubs] | None:
        raise NotImplementedError

    def _channel(self, module: Any, target: str) -> Any:
        if self._credentials is not None:
            return module.secure_channel(target, self._credentials, options=self._options)
        return module.insecure_channel(target, options=self._options)


class _Stubs:
    """The three unary calls on one channel."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.predict = rpc.unary_unary(channel, rpc.PREDICT)
        self.metadata = rpc.unary_unary(channel, rpc.GET_MODEL_METADATA)
        self.status = rpc.unary_unary(channel, rpc.GET_MODEL_STATUS)


class GrpcClient(_GrpcSetup, SyncClient):
    """Sync gRPC client (one channel per target, used round-robin; a failed attempt moves on to the next).

    ``target``: ``host:port``, ``grpc://host:port`` or ``grpcs://host:port`` (TLS), or several of them.
    ``timeout``: each call's default deadline (seconds, retries included; gRPC enforces it and sends it to the
    server). ``retry``: a ``RetryPolicy``. TLS: ``root_certificates`` (PEM bytes or path; default: system roots),
    ``private_key`` + ``certificate_chain`` for mutual TLS, ``server_name`` to override the name checked against
    the server's certificate. ``metadata``: headers for every call. ``max_message_bytes``: send/receive limit
    (default 256 MiB; gRPC's own 4 MiB is one batch of ten 180x180 float images). ``options``: extra channel
    options.
    """

    _stubs: RoundRobin[_Stubs]

    def _open(self) -> RoundRobin[_Stubs]:
        return RoundRobin(_Stubs(self._channel(grpc, t)) for t in self.targets)

    def _invoke(self, method: str, request: Any, timeout: float | None) -> Any:
        def attempt(left: float) -> Any:
            stub = getattr(self._stubs.next(), method)
            try:
                return stub(request, timeout=left, metadata=self._metadata)
            except grpc.RpcError as exc:
                raise map_grpc_error(exc) from exc

        return self._retrying(attempt, timeout)

    def predict(
        self,
        inputs: Mapping[str, Any] | np.ndarray,
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = SIGNATURE_FLOAT,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` on ``inputs`` (name -> array; one bare array is named from the model's metadata).

        Addresses the latest version, or ``version``, or the version ``label`` points to. Returns output name ->
        array (writable numpy arrays; strings as ``object`` arrays of bytes).
        """
        key = model_key(model, version, label)
        named = as_inputs(inputs)
        if not isinstance(named, dict):
            md = self.metadata(model, version=version, label=label, timeout=timeout)
            named = {single_input_name(md, signature): named}
        out = grpc_read_predict(self._invoke("predict", grpc_predict_request(named, key, signature), timeout))
        self._core.labels.learn(key, out)
        return out

    def status(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> ModelStatus:
        """``ModelService/GetModelStatus``: the versions and their states."""
        key = model_key(model, version, label)
        return status_from_proto(self._invoke("status", grpc_status_request(key), timeout), model)

    def _fetch_metadata(self, key: ModelKey, timeout: float | None) -> ModelMetadata:
        return metadata_from_proto(self._invoke("metadata", grpc_metadata_request(key), timeout), key[0])

    def _fetch_manifest(self, key: ModelKey, timeout: float | None) -> Manifest | None:
        return grpc_read_manifest(self._invoke("metadata", grpc_manifest_request(key), timeout))

    def close(self) -> None:
        """Close every channel."""
        for stubs in self._stubs.items:
            stubs.channel.close()


class AsyncGrpcClient(_GrpcSetup, AsyncClient):
    """Async gRPC client on ``grpc.aio``; same options and methods as ``GrpcClient`` (awaitable). Channels open
    on first use, inside the running event loop."""

    def _open(self) -> None:
        return None  # grpc.aio channels bind to the loop they are created in: _ring opens them on first use

    def _ring(self) -> RoundRobin[_Stubs]:
        if self._stubs is None:
            self._stubs = RoundRobin(_Stubs(self._channel(grpc.aio, t)) for t in self.targets)
        return self._stubs

    async def _invoke(self, method: str, request: Any, timeout: float | None) -> Any:
        async def attempt(left: float) -> Any:
            stub = getattr(self._ring().next(), method)
            try:
                return await stub(request, timeout=left, metadata=self._metadata)
            except grpc.RpcError as exc:
                raise map_grpc_error(exc) from exc

        return await self._retrying(attempt, timeout)

    async def predict(
        self,
        inputs: Mapping[str, Any] | np.ndarray,
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = SIGNATURE_FLOAT,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """As ``GrpcClient.predict``."""
        key = model_key(model, version, label)
        named = as_inputs(inputs)
        if not isinstance(named, dict):
            md = await self.metadata(model, version=version, label=label, timeout=timeout)
            named = {single_input_name(md, signature): named}
        out = grpc_read_predict(await self._invoke("predict", grpc_predict_request(named, key, signature), timeout))
        self._core.labels.learn(key, out)
        return out

    async def status(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> ModelStatus:
        """As ``GrpcClient.status``."""
        key = model_key(model, version, label)
        return status_from_proto(await self._invoke("status", grpc_status_request(key), timeout), model)

    async def _fetch_metadata(self, key: ModelKey, timeout: float | None) -> ModelMetadata:
        return metadata_from_proto(await self._invoke("metadata", grpc_metadata_request(key), timeout), key[0])

    async def _fetch_manifest(self, key: ModelKey, timeout: float | None) -> Manifest | None:
        return grpc_read_manifest(await self._invoke("metadata", grpc_manifest_request(key), timeout))

    async def aclose(self) -> None:
        """Close every channel."""
        if self._stubs is not None:
            for stubs in self._stubs.items:
                await stubs.channel.close()
            self._stubs = None
