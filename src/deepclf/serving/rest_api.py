"""TF Serving's REST API translated onto ``ServingCore``: request bodies in, JSON answers out.

One method per API, taking the steps every transport takes (``deepclf.serving.core``): resolve the version,
check the signature, decode the inputs, run, encode. JSON work runs in the worker pool, never on the event loop;
the event loop only awaits::

    api = RestApi(core)
    body = await api.predict("flowers", None, None, request_body, info)      # JSON bytes; ServingError raised

``rest.RestApp`` routes HTTP requests here and turns what these methods raise into TF Serving's error bodies.

deepclf extension: ``GET .../metadata?fields=deepclf_manifest`` (or ``fields=signature_def,deepclf_manifest``)
adds the model's ``manifest.json`` (labels, input size) as ``metadata.deepclf_manifest``, and any ``?fields=``
adds ``"deepclf"``: the backend and variant that answer. Without ``fields`` the answer is TF Serving's exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from deepclf import protocol as P
from deepclf.protocol import rest as R
from deepclf.protocol.inference import classify_results_to_json, input_from_json, regress_results_to_json
from deepclf.protocol.messages import SIGNATURE_DEF_FIELD, StringValue
from deepclf.serving.core import DEEPCLF_MANIFEST, SIGNATURE_DEF, CallInfo, ServingCore, backend_info
from deepclf.serving.models import ServedVersion
from deepclf.serving.signaturedefs import CLASSIFY, spec_dtype

_T = TypeVar("_T")


class RestApi:
    """Predict, Classify, Regress, GetModelMetadata and GetModelStatus as TF Serving's REST API answers them."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    async def in_pool(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in the worker pool, awaited on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.core.executor, fn, *args)

    # -- inference -----------------------------------------------------------------------------------------------

    async def predict(self, name: str, version: int | None, label: str | None, body: bytes, info: CallInfo) -> bytes:
        """``POST .../models/{name}:predict``: row (``instances``) or columnar (``inputs``) JSON, answered in the
        same format."""
        core = self.core
        with core.acquire(name, version, label, info) as served:
            if core.batcher is None:
                # One pool task decodes, runs and encodes: one wait in the pool's queue instead of three, and
                # one wake-up of the event loop (under load, every hop waits behind everyone else's).
                return await self.in_pool(self.predict_in_pool, served, body, info)
            key, req = await self.in_pool(self.decode_predict, served, body, info)
            outputs = await asyncio.wrap_future(core.predict(served, key, req.inputs, info))
            return await self.in_pool(R.encode_predict_response, outputs, req.format)

    def decode_predict(self, served: ServedVersion, body: bytes, info: CallInfo) -> tuple[str, R.RestRequest]:
        """Parse a predict body once, with the dtypes of the signature it names (JSON carries no types; TF
        Serving takes them from the signature too). The call's work starts here (``CallInfo.begin``)."""
        info.begin()
        found: list[str] = []

        def dtypes_of(sig_name: str) -> dict[str, Any]:
            key, spec = self.core.predict_signature(served, sig_name, rest=True)
            info.signature = key
            found.append(key)
            return {name: spec_dtype(t.dtype) for name, t in spec.inputs.items()}

        req = R.decode_predict_request(body, dtypes_of, budget=self.core.limits.budget())
        self.core.check_predict_method(served, found[0])  # after the JSON, as RunPredict checks it
        return found[0], req

    def predict_in_pool(self, served: ServedVersion, body: bytes, info: CallInfo) -> bytes:
        """A predict answered in the calling (pool) thread: decode, run, encode; no batcher. Refuses to start once
        ``info.deadline`` has passed (the request waited in the pool's queue that long)."""
        key, req = self.decode_predict(served, body, info)
        outputs = self.core.predict_now(served, key, req.inputs, info)
        return R.encode_predict_response(outputs, req.format)

    async def examples(
        self, verb: str, name: str, version: int | None, label: str | None, body: bytes, info: CallInfo
    ) -> bytes:
        """``POST .../models/{name}:classify`` or ``:regress`` (``verb``): tf.Examples as JSON (spec §5.5),
        answered as ``{"results": ...}``."""
        core = self.core
        sig_name, inp = await self.in_pool(input_from_json, body, verb)
        with core.acquire(name, version, label, info) as served:
            key = info.signature = core.inference_signature(served, sig_name, verb)
            inputs = await self.in_pool(core.examples_tensor, inp)
            if verb == CLASSIFY:
                return classify_results_to_json(await asyncio.wrap_future(core.classify(served, key, inputs, info)))
            return regress_results_to_json(await asyncio.wrap_future(core.regress(served, key, inputs, info)))

    # -- metadata and status -----------------------------------------------------------------------------------

    def metadata(self, name: str, version: int | None, label: str | None, fields: str | None, info: CallInfo) -> bytes:
        """``GET .../models/{name}/metadata``: TF Serving's answer exactly (``model_spec`` and ``metadata``);
        ``fields`` (``?fields=``): the deepclf extension described in the module docstring."""
        core = self.core
        if fields is None:
            return P.model_metadata_to_json(core.metadata(name, version, label, [SIGNATURE_DEF_FIELD], info))
        wanted = [f.strip() for f in fields.split(",") if f.strip()]
        if not wanted:
            raise P.InvalidInput("?fields= names no metadata field (supported: signature_def, deepclf_manifest)")
        resp = core.metadata(name, version, label, sorted({*wanted, SIGNATURE_DEF}), info)
        doc = orjson.loads(P.model_metadata_to_json(resp))
        if SIGNATURE_DEF not in wanted:
            del doc["metadata"][SIGNATURE_DEF]
        with core.manager.acquire(resp.model_spec.name, int(resp.model_spec.version.value)) as served:
            doc["deepclf"] = backend_info(served)
        if DEEPCLF_MANIFEST in wanted:
            doc["metadata"][DEEPCLF_MANIFEST] = orjson.loads(
                StringValue.FromString(resp.metadata[DEEPCLF_MANIFEST].value).value
            )
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    def status(self, name: str, version: int | None, label: str | None, info: CallInfo) -> bytes:
        """``GET .../models/{name}``: the status of every version (or the one asked for)."""
        return P.model_status_to_json(self.core.status(name, version, label, info))
