"""The I/O-free core every client shares: requests built, answers read, retries decided, images prepared.

Nothing here opens a socket or sleeps; the four clients (REST/gRPC x sync/async) are thin loops around it, in
the style of httpx over h11: the sync client ``time.sleep``s and the async one ``await asyncio.sleep``s the same
backoff this module computes, and both send the same bytes::

    call = CallState(RetryPolicy(), timeout=5.0)
    while True:
        try:
            return send(request, timeout=call.next_attempt())     # transport-specific, maps its errors
        except ServingError as err:
            time.sleep(call.backoff(err))                         # re-raises when the call must end
"""

from __future__ import annotations

import gzip
import itertools
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import numpy as np
import orjson
from google.protobuf.message import DecodeError

from deepclf.clients._errors import ProtocolError, TimeoutError, is_retryable
from deepclf.clients._models import ModelMetadata, ModelStatus, VersionStatus
from deepclf.errors import DeepclfError, UsageError
from deepclf.manifest import (
    INPUT_BYTES,
    INPUT_FLOAT,
    OUTPUT_CLASSES,
    OUTPUT_LABELS,
    OUTPUT_PROBABILITIES,
    SIGNATURE_BYTES,
    SIGNATURE_FLOAT,
    Manifest,
)
from deepclf.preprocessing import ImageSource, encode_image, preprocess_batch
from deepclf.protocol import messages, rest
from deepclf.protocol.errors import Code, InvalidInput, ServingError
from deepclf.protocol.tensors import as_array, numpy_dtype_for, to_ndarray, to_tensor_proto
from deepclf.signatures import CLASSIFY_BATCH, Classification, SignatureSpec, TensorSpec
from deepclf.signatures import classifications as _classifications

#: Client-wide default deadline for one call, retries included (seconds).
DEFAULT_TIMEOUT = 10.0
#: A sensible opt-in threshold: ``gzip_threshold=GZIP_THRESHOLD`` compresses REST request bodies over 64 KiB
#: (``Content-Encoding: gzip``); TF Serving and the edge server both decode them.
GZIP_THRESHOLD = 64 * 1024
# Off by default: compression pays on real networks but costs 120-210 ms per 8 images on loopback (docs/clients.md),
# where clients and the edge server often share a host, and the benchmarks must measure the codec, not zlib.
DEFAULT_GZIP_THRESHOLD: int | None = None
#: The deepclf extension of GetModelMetadata that returns a model version's manifest (labels, input size).
DEEPCLF_MANIFEST = "deepclf_manifest"
#: gRPC message limit for both directions: a batch of 32 float32 180x180 images is ~12 MB, over gRPC's 4 MB default.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024

SEND_TENSOR = "tensor"
SEND_BYTES = "bytes"

#: (model, version, label): what one ``ModelSpec`` addresses; the key of the per-model caches.
ModelKey = tuple[str, "int | None", "str | None"]
T = TypeVar("T")


# ------------------------------------------------------------------------------------ deadlines and retries


class Deadline:
    """A point in time a call must finish by; ``remaining()`` is what each attempt may still use."""

    __slots__ = ("_clock", "_end", "timeout")

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = check_timeout(timeout)
        self._clock = clock
        self._end = clock() + self.timeout

    def remaining(self) -> float:
        """Seconds left (0.0 once passed)."""
        return max(0.0, self._end - self._clock())


def check_timeout(timeout: Any, what: str = "timeout") -> float:
    """A deadline in seconds must be a positive finite number; say so, echoing the value, when it is not."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf):
        raise UsageError(f"{what} must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a failed call is sent again: exponential backoff with jitter, within a budget.

    Attempt ``n`` (n >= 1) that fails with a retryable error waits ``min(max_backoff, initial_backoff *
    multiplier**(n-1))``, minus up to ``jitter`` of it at random (1.0: "full jitter", spreading clients that failed
    together), then tries again, at most ``max_attempts`` attempts in all, and never past ``max_elapsed`` seconds
    of retrying nor past the call's deadline. ``retry_if`` decides what is retryable (default: UNAVAILABLE / 503
    and connection failures; never INVALID_ARGUMENT / 400 nor NOT_FOUND / 404)::

        RestClient(url, retry=RetryPolicy(max_attempts=10, max_backoff=0.5))
        GrpcClient(target, retry=NO_RETRIES)
    """

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0
    jitter: float = 1.0
    max_elapsed: float | None = None
    retry_if: Callable[[BaseException], bool] = field(default=is_retryable, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise UsageError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if not (0 <= self.initial_backoff <= self.max_backoff):
            raise UsageError(
                f"backoffs must satisfy 0 <= initial_backoff <= max_backoff, got {self.initial_backoff!r} "
                f"and {self.max_backoff!r}"
            )
        if self.multiplier < 1:
            raise UsageError(f"multiplier must be >= 1, got {self.multiplier!r}")
        if not (0 <= self.jitter <= 1):
            raise UsageError(f"jitter must be in 0..1, got {self.jitter!r}")
        if self.max_elapsed is not None and self.max_elapsed < 0:
            raise UsageError(f"max_elapsed must be >= 0 seconds or None, got {self.max_elapsed!r}")

    def backoff(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``rand`` is uniform in [0, 1)."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return cap * (1.0 - self.jitter * rand)


#: One attempt per call: errors surface at once.
NO_RETRIES = RetryPolicy(max_attempts=1)


class CallState:
    """One call's attempts under its deadline and retry budget (no I/O: the caller sends and sleeps)."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float,
        *,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.deadline = Deadline(timeout, clock)
        self.attempts = 0
        self._rand = rand
        self._clock = clock
        self._started = clock()

    def next_attempt(self) -> float:
        """Count an attempt; return the seconds it may take (what is left of the deadline)."""
        self.attempts += 1
        return max(self.deadline.remaining(), 1e-3)  # a zero timeout would mean "no deadline" to some libraries

    def backoff(self, error: ServingError) -> float:
        """The seconds to wait before retrying after ``error``; raises ``error`` when the call must end instead.

        Ends on non-retryable errors and spent budgets; when the next attempt could not start before the
        deadline, raises ``TimeoutError`` naming the attempts and the last error (its ``__cause__``).
        """
        policy = self.policy
        if not policy.retry_if(error):
            raise error
        if self.attempts >= policy.max_attempts:
            if self.attempts > 1:
                error.add_note(f"gave up after {self.attempts} attempts (max_attempts={policy.max_attempts})")
            raise error
        delay = policy.backoff(self.attempts, self._rand())
        if policy.max_elapsed is not None and self._clock() - self._started + delay > policy.max_elapsed:
            error.add_note(f"gave up after {self.attempts} attempts (max_elapsed={policy.max_elapsed}s)")
            raise error
        if delay >= self.deadline.remaining():
            raise TimeoutError(
                f"deadline of {self.deadline.timeout:g}s passed after {self.attempts} attempt(s); last error: "
                f"{type(error).__name__}: {error}"
            ) from error
        return delay


class WaitState:
    """One ``wait_until_available`` poll loop (no I/O: the caller asks ``status`` and sleeps).

    Connection failures, UNAVAILABLE and NOT_FOUND (TF Serving's answer while a model loads) mean "not yet";
    the caller passes them to ``failed`` and keeps polling.
    """

    def __init__(self, key: ModelKey, timeout: float, poll_interval: float, attempt_timeout: float) -> None:
        self.key = key
        self.timeout = check_timeout(timeout)
        self._end = time.monotonic() + self.timeout
        self._poll_interval = poll_interval
        self._attempt_timeout = attempt_timeout
        self._last = "no answer yet"

    def next_attempt(self) -> float:
        """The timeout for the next ``status`` call; ``TimeoutError`` once the wait is over."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"model {self.key[0]!r} was not available within {self.timeout:g}s; last: {self._last}"
            )
        return min(left, self._attempt_timeout)

    def ready(self, status: ModelStatus) -> bool:
        """Whether ``status`` shows the model (or the awaited version) AVAILABLE."""
        version = self.key[1]
        if (version in status.available_versions) if version is not None else status.available:
            return True
        self._last = f"versions {[(v.version, v.state) for v in status.versions]}"
        return False

    def failed(self, error: BaseException) -> None:
        self._last = f"{type(error).__name__}: {error}"

    def pause(self) -> float:
        """Seconds to sleep before the next poll."""
        return max(0.0, min(self._poll_interval, self._end - time.monotonic()))


class RoundRobin(Generic[T]):
    """Hands out ``items`` in turn, across threads (``itertools.count`` steps atomically under the GIL)."""

    def __init__(self, items: Iterable[T]) -> None:
        self.items: tuple[T, ...] = tuple(items)
        if not self.items:
            raise UsageError("need at least one target")
        self._counter = itertools.count()

    def next(self) -> T:
        return self.items[next(self._counter) % len(self.items)]

    def __len__(self) -> int:
        return len(self.items)


# ------------------------------------------------------------------------------------------------- targets


def parse_grpc_target(target: str) -> tuple[str, bool | None]:
    """``grpc://host:port`` -> (``host:port``, False); ``grpcs://`` -> True (TLS); bare ``host:port`` -> None."""
    if not isinstance(target, str) or not target.strip():
        raise UsageError(f"a gRPC target must be 'host:port' (or grpc://host:port), got {target!r}")
    t = target.strip()
    for scheme, tls in (("grpc://", False), ("grpcs://", True)):
        if t.startswith(scheme):
            t = t[len(scheme):].rstrip("/")
            if not t:
                raise UsageError(f"gRPC target {target!r} names no host:port")
            return t, tls
    if "://" in t:
        raise UsageError(f"gRPC target {target!r} has scheme {t.split('://')[0]!r}; expected grpc:// or grpcs://")
    return t, None


def parse_rest_url(url: str) -> str:
    """A REST base URL (``http://host:8501``, optionally with a path prefix) without its trailing slash."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise UsageError(f"a REST base URL must start with http:// or https:// and name a host, got {url!r}")
    return url.rstrip("/")


def as_targets(targets: str | Sequence[str]) -> list[str]:
    """One target or several (round-robin); a comma-separated string counts as several."""
    if isinstance(targets, str):
        items = [t.strip() for t in targets.split(",") if t.strip()] if "," in targets else [targets]
    else:
        items = list(targets)
    if not items:
        raise UsageError("need at least one server target")
    return items


# ----------------------------------------------------------------------------------------- model addressing


def model_key(model: str, version: int | None, label: str | None) -> ModelKey:
    """Validate how a call addresses a model: a name, and a version *or* a label (neither: the latest)."""
    if not isinstance(model, str) or not model:
        raise UsageError(f"model must be a non-empty model name, got {model!r}")
    if version is not None and label is not None:
        raise UsageError(f"address a model by version ({version!r}) or by label ({label!r}), not both")
    if version is not None and (isinstance(version, bool) or not isinstance(version, (int, np.integer))
                                or version < 0):
        raise UsageError(f"version must be a non-negative integer, got {version!r}")
    if label is not None and (not isinstance(label, str) or not label):
        raise UsageError(f"label must be a non-empty string, got {label!r}")
    return (model, None if version is None else int(version), label)


def model_spec(key: ModelKey, signature: str = "") -> Any:
    """The ``ModelSpec`` message for a key."""
    model, version, label = key
    return messages.model_spec(model, version, version_label=label, signature_name=signature)


def as_inputs(inputs: Mapping[str, Any] | Any) -> dict[str, np.ndarray] | np.ndarray:
    """Named inputs as arrays (bytes kept intact), or one array for a signature's single input."""
    if isinstance(inputs, Mapping):
        if not inputs:
            raise InvalidInput("predict needs at least one input, got an empty mapping")
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad:
            raise InvalidInput(f"input names must be strings, got {bad!r}")
        return {k: as_array(v) for k, v in inputs.items()}
    return as_array(inputs)


def single_input_name(md: ModelMetadata, signature: str) -> str:
    """The name of a signature's only input (for predict calls given one bare array)."""
    spec = md.signatures.get(signature)
    if spec is None:
        raise InvalidInput(f"model {md.model!r} has no signature {signature!r}; it has {sorted(md.signatures)}")
    if len(spec.inputs) != 1:
        raise InvalidInput(
            f"signature {signature!r} takes {len(spec.inputs)} inputs {sorted(spec.inputs)}; pass a mapping "
            "of input name to array"
        )
    return next(iter(spec.inputs))


# ------------------------------------------------------------------------------------------------ REST codec


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
        format: str = rest.ROW,  # noqa: A002 - TF Serving's word
        gzip_threshold: int | None = DEFAULT_GZIP_THRESHOLD,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.format = check_format(format)
        if gzip_threshold is not None and (not isinstance(gzip_threshold, int) or gzip_threshold < 0):
            raise UsageError(f"gzip_threshold must be a byte count >= 0 or None, got {gzip_threshold!r}")
        self.gzip_threshold = gzip_threshold
        self.headers = dict(headers or {})

    def predict(
        self, key: ModelKey, inputs: dict[str, np.ndarray] | np.ndarray, *, signature: str,
        format: str | None = None,  # noqa: A002
    ) -> HttpRequest:
        body = rest.encode_predict_request(
            inputs, signature_name=signature, format=check_format(format or self.format)
        )
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
        return _manifest_from(found)

    @staticmethod
    def read_predict(content: bytes, md: ModelMetadata | None, signature: str) -> dict[str, np.ndarray]:
        """A 2xx predict body -> named arrays. A single unnamed output is named from ``md`` when known."""
        spec = md.signatures.get(signature) if md is not None else None
        names = list(spec.outputs) if spec is not None else None
        dtypes = {n: _rest_dtype(t) for n, t in spec.outputs.items()} if spec is not None else None
        try:
            return rest.decode_predict_response(content, output_names=names, dtypes=dtypes)
        except InvalidInput as exc:
            raise ProtocolError(f"the server's predict answer is not TF Serving JSON: {exc}") from None

    @staticmethod
    def read_status(content: bytes, key: ModelKey) -> ModelStatus:
        try:
            return status_from_proto(rest.model_status_from_json(content), key[0])
        except InvalidInput as exc:
            raise ProtocolError(f"the server's status answer is not TF Serving JSON: {exc}") from None

    @staticmethod
    def read_metadata(content: bytes, key: ModelKey) -> ModelMetadata:
        try:
            return metadata_from_proto(rest.model_metadata_from_json(content), key[0])
        except (InvalidInput, KeyError, ValueError) as exc:
            raise ProtocolError(f"the server's metadata answer is not TF Serving JSON: {exc}") from None


def check_format(format: str) -> str:  # noqa: A002
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


# ------------------------------------------------------------------------------------------------ gRPC codec


def grpc_predict_request(inputs: Mapping[str, np.ndarray], key: ModelKey, signature: str) -> Any:
    """A ``PredictRequest`` for named inputs."""
    req = messages.PredictRequest(model_spec=model_spec(key, signature))
    for name, value in inputs.items():
        req.inputs[name].CopyFrom(to_tensor_proto(value))
    return req


def grpc_read_predict(response: Any) -> dict[str, np.ndarray]:
    """A ``PredictResponse`` -> named arrays (writable copies, not views of the message)."""
    try:
        return {name: np.array(to_ndarray(t), copy=True) for name, t in response.outputs.items()}
    except InvalidInput as exc:
        raise ProtocolError(f"the server's predict answer holds an unreadable tensor: {exc}") from None


def grpc_metadata_request(key: ModelKey) -> Any:
    return messages.GetModelMetadataRequest(
        model_spec=model_spec(key), metadata_field=[messages.SIGNATURE_DEF_FIELD]
    )


def grpc_manifest_request(key: ModelKey) -> Any:
    """GetModelMetadata asking for the deepclf extension field alone (TF Serving answers INVALID_ARGUMENT)."""
    return messages.GetModelMetadataRequest(model_spec=model_spec(key), metadata_field=[DEEPCLF_MANIFEST])


_STRING_VALUE = "google.protobuf.StringValue"


def grpc_read_manifest(response: Any) -> Manifest | None:
    """The manifest packed in a ``GetModelMetadataResponse`` (an ``Any`` holding a ``StringValue`` of JSON)."""
    if DEEPCLF_MANIFEST not in response.metadata:
        return None
    entry = response.metadata[DEEPCLF_MANIFEST]
    if entry.type_url.split("/")[-1] != _STRING_VALUE:
        raise ProtocolError(f"metadata[{DEEPCLF_MANIFEST!r}] packs {entry.type_url!r}, expected {_STRING_VALUE}")
    try:
        text = messages.message_class(_STRING_VALUE).FromString(entry.value).value
        return _manifest_from(orjson.loads(text))
    except (DecodeError, orjson.JSONDecodeError) as exc:
        raise ProtocolError(f"metadata[{DEEPCLF_MANIFEST!r}] is not a JSON manifest: {exc}") from None


def _manifest_from(doc: Any) -> Manifest:
    try:
        return Manifest.from_dict(doc)
    except (DeepclfError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"metadata[{DEEPCLF_MANIFEST!r}] is not a deepclf manifest: {exc}") from None


def grpc_status_request(key: ModelKey) -> Any:
    return messages.GetModelStatusRequest(model_spec=model_spec(key))


def _tensor_spec(name: str, info: Any) -> TensorSpec:
    dtype = "string" if info.dtype == messages.DataType.DT_STRING else numpy_dtype_for(info.dtype).name
    shape: tuple[int | None, ...] = ()
    if not info.tensor_shape.unknown_rank:
        shape = tuple(None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
    return TensorSpec(name, dtype, shape)


def metadata_from_proto(response: Any, model: str) -> ModelMetadata:
    """A ``GetModelMetadataResponse`` (gRPC, or parsed from REST JSON) -> ``ModelMetadata``."""
    try:
        sigs = messages.unpack_signature_defs(response)
    except (KeyError, ValueError) as exc:
        raise ProtocolError(f"model metadata without a usable signature_def: {exc}") from None
    out: dict[str, SignatureSpec] = {}
    for name in sorted(sigs.signature_def):
        sd = sigs.signature_def[name]
        out[name] = SignatureSpec(
            name,
            {k: _tensor_spec(k, v) for k, v in sorted(sd.inputs.items())},
            {k: _tensor_spec(k, v) for k, v in sorted(sd.outputs.items())},
        )
    spec = response.model_spec
    version = int(spec.version.value) if spec.HasField("version") else None
    return ModelMetadata(spec.name or model, version, out)


def status_from_proto(response: Any, model: str) -> ModelStatus:
    """A ``GetModelStatusResponse`` (gRPC, or parsed from REST JSON) -> ``ModelStatus``."""
    versions = []
    for v in response.model_version_status:
        try:
            state = messages.ModelVersionState.Name(v.state)
        except ValueError:
            state = str(v.state)
        try:
            code = Code(int(v.status.error_code)).name
        except ValueError:
            code = str(v.status.error_code)
        versions.append(VersionStatus(int(v.version), state, code, v.status.error_message))
    return ModelStatus(model, tuple(sorted(versions, key=lambda s: s.version)))


# ---------------------------------------------------------------------------------------------- classify


def image_list(images: Any) -> list[ImageSource]:
    """One image or a sequence of them (paths, bytes, PIL images, arrays) -> a list."""
    if isinstance(images, (str, bytes, bytearray, memoryview, np.ndarray)) or not isinstance(images, Iterable):
        return [images]
    if hasattr(images, "getpixel"):  # a PIL image is iterable-ish; it is one image
        return [images]
    return list(images)


def check_send(send: str) -> str:
    if send not in (SEND_TENSOR, SEND_BYTES):
        raise UsageError(f"send must be {SEND_TENSOR!r} (preprocess here) or {SEND_BYTES!r} (encoded images), "
                         f"got {send!r}")
    return send


def check_top_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"top_k must be an integer >= 1, got {k!r}")
    return int(k)


def classify_batches(
    items: Sequence[ImageSource], send: str, size: tuple[int, int] | None, batch: int = CLASSIFY_BATCH
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """(signature, inputs) per batch of at most ``batch`` images, prepared lazily (bounded memory).

    ``send="tensor"``: pixels through ``deepclf.preprocessing`` at ``size`` for ``serving_default``;
    ``send="bytes"``: encoded images (files as they are) for ``predict_image_bytes``. Batches match
    ``Runner.classify``'s, so local and remote results are computed on identical batches.
    """
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        if send == SEND_TENSOR:
            if size is None:
                raise AssertionError("tensor batches need the model's input size")  # pragma: no cover
            yield SIGNATURE_FLOAT, {INPUT_FLOAT: preprocess_batch(chunk, size)}
        else:
            arr = np.empty(len(chunk), dtype=object)
            arr[:] = [encode_image(x) for x in chunk]
            yield SIGNATURE_BYTES, {INPUT_BYTES: arr}


class LabelBook:
    """Class names per model, learned from answers (``classes`` + ``labels`` outputs) or given by the caller.

    TF Serving's metadata carries no label vocabulary; each answer names the top class only. ``classify`` thus
    uses, in order: ``labels=`` when given, the model's manifest labels when the server offers them (the edge
    server's ``deepclf_manifest`` metadata extension), else the classes the server has named so far, and
    ``class_<i>`` for the others.
    """

    def __init__(self) -> None:
        self._known: dict[ModelKey, dict[int, str]] = {}
        self._lock = threading.Lock()

    def learn(self, key: ModelKey, outputs: Mapping[str, np.ndarray]) -> None:
        classes, labels = outputs.get(OUTPUT_CLASSES), outputs.get(OUTPUT_LABELS)
        if classes is None or labels is None or np.shape(classes) != np.shape(labels):
            return
        pairs = {int(c): (x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x))
                 for c, x in zip(np.ravel(classes).tolist(), np.ravel(labels).tolist())}
        with self._lock:
            self._known.setdefault(key, {}).update(pairs)

    def names(self, key: ModelKey, n: int, given: Sequence[str] | None = None,
              vocabulary: Sequence[str] | None = None) -> list[str]:
        """``n`` class names: ``given`` (must have ``n``), else ``vocabulary`` (the server's manifest labels, used
        when it has ``n``), else the names learned from answers."""
        if given is not None:
            if len(given) != n:
                raise UsageError(f"labels has {len(given)} names but the model scores {n} classes")
            return [str(x) for x in given]
        if vocabulary is not None and len(vocabulary) == n:
            return [str(x) for x in vocabulary]
        known = self._known.get(key, {})
        return [known.get(i, f"class_{i}") for i in range(n)]


def classifications(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[Classification]:
    """``Classification`` per row of an answer's probabilities, exactly as ``Runner.classify`` builds them."""
    probs = np.asarray(probabilities)
    if probs.ndim != 2:
        raise ProtocolError(f"expected {OUTPUT_PROBABILITIES!r} of shape [batch, classes], got {list(probs.shape)}")
    return _classifications(probs, labels, k)


def probabilities_of(outputs: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The ``probabilities`` output of an answer for ``n`` images, checked."""
    probs = outputs.get(OUTPUT_PROBABILITIES)
    if probs is None:
        raise ProtocolError(
            f"the answer has no {OUTPUT_PROBABILITIES!r} output (outputs: {sorted(outputs)}); classify needs a "
            "deepclf model's signatures"
        )
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[0] != n:
        raise ProtocolError(f"expected {OUTPUT_PROBABILITIES!r} of shape [{n}, classes], got {list(probs.shape)}")
    return probs


class ClientCore:
    """State every client keeps: default deadline, retry policy, metadata cache, learned labels."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy | None = None) -> None:
        self.timeout = check_timeout(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        if not isinstance(self.retry, RetryPolicy):
            raise UsageError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        self.metadata_cache: dict[ModelKey, ModelMetadata] = {}
        #: the server's manifest per model/version/label; None: the server does not offer it (TF Serving)
        self.manifest_cache: dict[ModelKey, Manifest | None] = {}
        self.labels = LabelBook()

    def wait(self, key: ModelKey, timeout: float, poll_interval: float) -> WaitState:
        """A new ``wait_until_available``: each ``status`` poll gets at most the client's default deadline."""
        return WaitState(key, timeout, poll_interval, self.timeout)

    def classified(
        self,
        key: ModelKey,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        k: int,
        labels: Sequence[str] | None,
        vocabulary: Sequence[str] | None,
    ) -> list[Classification]:
        """The ``Classification``s of one ``classify`` batch from the server's answer to it."""
        probs = probabilities_of(outputs, len(next(iter(inputs.values()))))
        return classifications(probs, self.labels.names(key, probs.shape[1], labels, vocabulary), k)

    def start(self, timeout: float | None) -> CallState:
        """A new call: ``timeout`` seconds (``None``: the client's default), retried per the policy."""
        return CallState(self.retry, self.timeout if timeout is None else check_timeout(timeout))
