"""What every remote client does the same way, once for sync and once for async: retry loop, metadata cache,
``classify`` on top of ``predict``, ``wait_until_available`` on top of ``status``.

A transport implements five methods (``predict``, ``status``, ``_fetch_metadata``, ``_fetch_manifest``,
``close``); everything else comes from here, so the REST and gRPC clients cannot drift apart.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from deepclf.clients._addressing import ModelKey, model_key
from deepclf.clients._classify import SEND_TENSOR, check_send, check_top_k, classify_batches, image_list
from deepclf.clients._core import ClientCore
from deepclf.clients._errors import ConnectError, ProtocolError, TimeoutError
from deepclf.clients._models import ModelMetadata, ModelStatus
from deepclf.manifest import SIGNATURE_FLOAT, Manifest
from deepclf.protocol.errors import (
    FailedPrecondition,
    InvalidInput,
    ModelNotFound,
    ServingError,
    Unavailable,
    Unimplemented,
)
from deepclf.signatures import Classification

T = TypeVar("T")

#: While waiting for a model, these mean "not yet" (server starting, model loading), not "never".
_NOT_YET = (ConnectError, Unavailable, ModelNotFound, TimeoutError)
#: A server without the deepclf_manifest extension (TF Serving: INVALID_ARGUMENT / 400 "Metadata field ... is
#: not supported", or a proxy's 404) answers with one of these: classify falls back to names learned from answers.
_NO_MANIFEST = (InvalidInput, ModelNotFound, Unimplemented, FailedPrecondition, ProtocolError)


class SyncClient:
    """Base of ``RestClient`` and ``GrpcClient``."""

    _core: ClientCore

    # -- implemented by the transport -------------------------------------------------------------------------

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
        raise NotImplementedError

    def status(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> ModelStatus:
        raise NotImplementedError

    def _fetch_metadata(self, key: ModelKey, timeout: float | None) -> ModelMetadata:
        raise NotImplementedError

    def _fetch_manifest(self, key: ModelKey, timeout: float | None) -> Manifest | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------------------

    def _retrying(self, attempt: Callable[[float], T], timeout: float | None) -> T:
        """Run ``attempt(seconds_left)`` until it succeeds or the policy/deadline ends the call."""
        call = self._core.start(timeout)
        while True:
            try:
                result = attempt(call.next_attempt())
            except ServingError as err:
                delay = call.backoff(err)  # raises when the call must end
            else:
                call.succeeded()
                return result
            time.sleep(delay)

    def metadata(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        refresh: bool = False,
    ) -> ModelMetadata:
        """The model's signatures (cached per model/version/label; ``refresh=True`` asks again)."""
        key = model_key(model, version, label)
        if refresh or key not in self._core.metadata_cache:
            self._core.metadata_cache[key] = self._fetch_metadata(key, timeout)
        return self._core.metadata_cache[key]

    def manifest(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        refresh: bool = False,
    ) -> Manifest | None:
        """The model's deepclf manifest (labels, input size) from the edge server's ``deepclf_manifest`` metadata
        extension; ``None`` when the server does not offer it (TF Serving). Cached per model/version/label, the
        refusal too (``refresh=True`` asks again)."""
        key = model_key(model, version, label)
        if refresh or key not in self._core.manifest_cache:
            try:
                self._core.manifest_cache[key] = self._fetch_manifest(key, timeout)
            except _NO_MANIFEST:
                self._core.manifest_cache[key] = None
        return self._core.manifest_cache[key]

    def classify(
        self,
        images: Any,
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        top_k: int = 5,
        send: str = SEND_TENSOR,
        labels: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> list[Classification]:
        """Classify paths, bytes, PIL images or arrays; one ``Classification`` per image.

        ``send="tensor"`` preprocesses here with ``deepclf.preprocessing`` at the size the model's metadata
        gives (fetched once, cached) and calls ``serving_default``; ``send="bytes"`` sends the encoded images to
        ``predict_image_bytes`` (the server decodes). ``labels`` names the classes (default: the model's manifest
        labels when the server offers them, fetched once when ``top_k > 1``; else as the server's answers name
        them, see ``LabelBook``). ``timeout`` applies to each request (one per 32 images).
        """
        key = model_key(model, version, label)
        send, k = check_send(send), check_top_k(top_k)
        items = image_list(images)
        size = (
            self.metadata(model, version=version, label=label, timeout=timeout).input_size()
            if send == SEND_TENSOR and items
            else None
        )
        vocabulary = None
        if labels is None and k > 1 and items:
            found = self.manifest(model, version=version, label=label, timeout=timeout)
            vocabulary = found.labels if found is not None else None
        results: list[Classification] = []
        for signature, inputs in classify_batches(items, send, size):
            out = self.predict(inputs, model=model, version=version, label=label, signature=signature, timeout=timeout)
            results += self._core.classified(key, inputs, out, k, labels, vocabulary)
        return results

    def wait_until_available(
        self,
        model: str,
        timeout: float = 30.0,
        *,
        version: int | None = None,
        label: str | None = None,
        poll_interval: float = 0.1,
    ) -> ModelStatus:
        """Poll ``status`` until the model (or ``version``) is AVAILABLE; ``TimeoutError`` after ``timeout`` s.

        Connection failures, UNAVAILABLE and NOT_FOUND (TF Serving's answer while a model loads) mean "not yet".
        """
        wait = self._core.wait(model_key(model, version, label), timeout, poll_interval)
        while True:
            left = wait.next_attempt()  # raises TimeoutError once the wait is over
            try:
                st = self.status(model, version=version, label=label, timeout=left)
                if wait.ready(st):
                    return st
            except _NOT_YET as err:
                wait.failed(err)
            time.sleep(wait.pause())

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """Base of ``AsyncRestClient`` and ``AsyncGrpcClient`` (same methods as ``SyncClient``, awaitable)."""

    _core: ClientCore

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
        raise NotImplementedError

    async def status(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> ModelStatus:
        raise NotImplementedError

    async def _fetch_metadata(self, key: ModelKey, timeout: float | None) -> ModelMetadata:
        raise NotImplementedError

    async def _fetch_manifest(self, key: ModelKey, timeout: float | None) -> Manifest | None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def _retrying(self, attempt: Callable[[float], Awaitable[T]], timeout: float | None) -> T:
        """Await ``attempt(seconds_left)`` until it succeeds or the policy/deadline ends the call.

        Each attempt is also bounded by ``asyncio.wait_for``, so the deadline is a true total (no per-read
        timeouts adding up).
        """
        call = self._core.start(timeout)
        while True:
            left = call.next_attempt()
            try:
                try:
                    result = await asyncio.wait_for(attempt(left), left)
                except builtins.TimeoutError as exc:
                    if isinstance(exc, ServingError):
                        raise
                    raise TimeoutError(f"no answer within the {left:.3g}s left of the deadline") from exc
            except ServingError as err:
                delay = call.backoff(err)
            else:
                call.succeeded()
                return result
            await asyncio.sleep(delay)

    async def metadata(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        refresh: bool = False,
    ) -> ModelMetadata:
        """The model's signatures (cached per model/version/label; ``refresh=True`` asks again)."""
        key = model_key(model, version, label)
        if refresh or key not in self._core.metadata_cache:
            self._core.metadata_cache[key] = await self._fetch_metadata(key, timeout)
        return self._core.metadata_cache[key]

    async def manifest(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        refresh: bool = False,
    ) -> Manifest | None:
        """As ``SyncClient.manifest``."""
        key = model_key(model, version, label)
        if refresh or key not in self._core.manifest_cache:
            try:
                self._core.manifest_cache[key] = await self._fetch_manifest(key, timeout)
            except _NO_MANIFEST:
                self._core.manifest_cache[key] = None
        return self._core.manifest_cache[key]

    async def classify(
        self,
        images: Any,
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        top_k: int = 5,
        send: str = SEND_TENSOR,
        labels: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> list[Classification]:
        """As ``SyncClient.classify``."""
        key = model_key(model, version, label)
        send, k = check_send(send), check_top_k(top_k)
        items = image_list(images)
        size = None
        if send == SEND_TENSOR and items:
            size = (await self.metadata(model, version=version, label=label, timeout=timeout)).input_size()
        vocabulary = None
        if labels is None and k > 1 and items:
            found = await self.manifest(model, version=version, label=label, timeout=timeout)
            vocabulary = found.labels if found is not None else None
        results: list[Classification] = []
        for signature, inputs in classify_batches(items, send, size):
            out = await self.predict(
                inputs, model=model, version=version, label=label, signature=signature, timeout=timeout
            )
            results += self._core.classified(key, inputs, out, k, labels, vocabulary)
        return results

    async def wait_until_available(
        self,
        model: str,
        timeout: float = 30.0,
        *,
        version: int | None = None,
        label: str | None = None,
        poll_interval: float = 0.1,
    ) -> ModelStatus:
        """As ``SyncClient.wait_until_available``."""
        wait = self._core.wait(model_key(model, version, label), timeout, poll_interval)
        while True:
            left = wait.next_attempt()  # raises TimeoutError once the wait is over
            try:
                st = await self.status(model, version=version, label=label, timeout=left)
                if wait.ready(st):
                    return st
            except _NOT_YET as err:
                wait.failed(err)
            await asyncio.sleep(wait.pause())

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
