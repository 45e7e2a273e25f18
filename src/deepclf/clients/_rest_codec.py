"""TF Serving's REST API without I/O: ``RestCodec`` builds each request (``HttpRequest``: method, path below the
base URL, headers, body) and reads the answer's bytes; the REST clients only send and receive::

    codec = RestCodec(format="columnar", gzip_threshold=GZIP_THRESHOLD)
    req = codec.predict(("flowers", 1, None), {"image": batch}, signature="serving_default")
    req.method, req.path            # "POST", "/v1/models/flowers/versions/1:predict"
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np
import orjson

from deepclf.clients._addressing import ModelKey
from deepclf.clients._errors import ProtocolError
from deepclf.clients._metadata import DEEPCLF_MANIFEST, manifest_from, metadata_from_proto, status_from_proto
from deepclf.clients._models import ModelMetadata, ModelStatus
from deepclf.errors import UsageError
from deepclf.manifest import Manifest
from deepclf.protocol import rest
from deepclf.protocol.errors import InvalidInput
from deepclf.signatures import TensorSpec

_T = TypeVar("_T")

#: A sensible opt-in threshold: ``gzip_threshold=GZIP_THRESHOLD`` compresses REST request bodies over 64 KiB
#: (``Content-Encoding: gzip``); TF Serving and the edge server both decode them.
GZIP_THRESHOLD = 64 * 1024
# Off by default: compression pays on real networks but costs more than it saves on loopback (`python
# benchmarks/measure_gzip.py PHOTOS`, docs/results/2026-11-27-clients.md), where clients and the edge server often
# share a host, and the benchmarks must measure the codec, not zlib.
DEFAULT_GZIP_THRESHOLD: int | None = None


@dataclass(frozen=True)
class HttpRequest:
    """What to send: method, path (below any base URL: the same request can go to each target), headers and
    body (already gzip-compressed when it is large)."""

    method: str
    path: str
    headers: dict[str, str]
    content: bytes | None = None


def rest_model_path(key: ModelKey) -> str:
    """``/v1/models/<name>[/versions/<v> | /labels/<label>]`` (names are URL-quoted)."""
    model, version, label = key
    path = f"/v1/models/{quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{version}"
    elif label is not None:
        path += f"/labels/{quote(label, safe='')}"
    return path


class RestCodec:
    """Builds TF Serving REST requests and reads their answers; no I/O.

    ``format``: ``"row"`` (``instances``) or ``"columnar"`` (``inputs``). Bodies over ``gzip_threshold`` bytes
    are gzip-compressed (default ``None``: never; ``GZIP_THRESHOLD`` is 64 KiB). ``headers`` go on every request.
    """

    def __init__(
        self,
        *,
        format: str = rest.ROW,  # TF Serving's word
        gzip_threshold: int | None = DEFAULT_GZIP_THRESHOLD,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.format = check_format(format)
        if gzip_threshold is not None and (not isinstance(gzip_threshold, int) or gzip_threshold < 0):
            raise UsageError(f"gzip_threshold must be a byte count >= 0 or None, got {gzip_threshold!r}")
        self.gzip_threshold = gzip_threshold
        self.headers = dict(headers or {})

    def predict(
        self,
        key: ModelKey,
        inputs: dict[str, np.ndarray] | np.ndarray,
        *,
        signature: str,
        format: str | None = None,
    ) -> HttpRequest:
        body = rest.encode_predict_request(inputs, signature_name=signature, format=check_format(format or self.format))
        headers = {**self.headers, "Content-Type": "application/json"}
        if self.gzip_threshold is not None and len(body) > self.gzip_threshold:
            # Level 1: numbers in JSON shrink ~3x already; higher levels cost far more CPU for little more.
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return HttpRequest("POST", f"{rest_model_path(key)}:predict", headers, body)

    def status(self, key: ModelKey) -> HttpRequest:
        return HttpRequest("GET", rest_model_path(key), dict(self.headers))

    def metadata(self, key: ModelKey) -> HttpRequest:
        return HttpRequest("GET", f"{rest_model_path(key)}/metadata", dict(self.headers))

    def manifest(self, key: ModelKey) -> HttpRequest:
        """The deepclf extension: metadata with the model's manifest (TF Serving refuses or ignores the query)."""
        return HttpRequest("GET", f"{rest_model_path(key)}/metadata?fields={DEEPCLF_MANIFEST}", dict(self.headers))

    @staticmethod
    def read_manifest(content: bytes) -> Manifest | None:
        """The manifest in a ``?fields=deepclf_manifest`` answer; ``None`` when the server left it out."""
        try:
            doc = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"the server's metadata answer is not JSON: {exc}") from None
        found = (doc.get("metadata") or {}).get(DEEPCLF_MANIFEST) if isinstance(doc, dict) else None
        if found is None:
            return None
        return manifest_from(found)

    @staticmethod
    def read_predict(content: bytes, md: ModelMetadata | None, signature: str) -> dict[str, np.ndarray]:
        """A 2xx predict body -> named arrays. A single unnamed output is named from ``md`` when known."""
        spec = md.signatures.get(signature) if md is not None else None
        names = list(spec.outputs) if spec is not None else None
        dtypes = {n: _rest_dtype(t) for n, t in spec.outputs.items()} if spec is not None else None
        return _decoded("predict", lambda: rest.decode_predict_response(content, output_names=names, dtypes=dtypes))

    @staticmethod
    def read_status(content: bytes, key: ModelKey) -> ModelStatus:
        return _decoded("status", lambda: status_from_proto(rest.model_status_from_json(content), key[0]))

    @staticmethod
    def read_metadata(content: bytes, key: ModelKey) -> ModelMetadata:
        return _decoded(
            "metadata",
            lambda: metadata_from_proto(rest.model_metadata_from_json(content), key[0]),
            (InvalidInput, KeyError, ValueError),
        )


def _decoded(answer: str, decode: Callable[[], _T], errors: tuple[type[Exception], ...] = (InvalidInput,)) -> _T:
    """``decode()``; ``errors`` it raises become a ``ProtocolError`` naming the ``answer`` that is not TF Serving
    JSON."""
    try:
        return decode()
    except errors as exc:
        raise ProtocolError(f"the server's {answer} answer is not TF Serving JSON: {exc}") from None


def check_format(format: str) -> str:
    if format not in (rest.ROW, rest.COLUMNAR):
        raise UsageError(f"REST format must be {rest.ROW!r} or {rest.COLUMNAR!r}, got {format!r}")
    return format


def _rest_dtype(spec: TensorSpec) -> Any:
    return object if spec.dtype == "string" else spec.dtype


def has_unnamed(outputs: Mapping[str, Any]) -> bool:
    """Whether a REST answer carried a single output without its name (row/columnar with one output)."""
    return rest.UNNAMED in outputs


def name_single_output(outputs: dict[str, np.ndarray], md: ModelMetadata, signature: str) -> dict[str, np.ndarray]:
    """Key an unnamed single REST output by the signature's only output name (as gRPC would name it)."""
    spec = md.signatures.get(signature)
    if rest.UNNAMED not in outputs or spec is None or len(spec.outputs) != 1:
        return outputs
    return {next(iter(spec.outputs)): outputs[rest.UNNAMED]}
