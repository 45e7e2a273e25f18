"""What a benchmark measures: a *target*, one model in one format behind one transport, named by a spec string.

Every target turns the same ``Batch`` (float32 images plus their encoded bytes) into probabilities ``[N, C]``, so
the latency scenarios and the parity check treat an in-process Keras model and a gRPC server alike::

    t = parse_target("tflite:models/flowers/1?variant=int8&threads=2")
    t.open()                                  # load the model / connect; raises -> reported as a failed target
    probs = t.predict(Batch.from_sources(["rose.jpg"], t.input_size))
    t.close()

Spec strings (``?name=...`` renames any target in reports):

==========================================  ==============================================================
``keras:RUN_DIR_OR_FILE``                   in-process Keras (``model(x)`` through the Keras runner)
``savedmodel:VERSION_DIR``                  in-process SavedModel (TensorFlow)
``tflite:VERSION_DIR_OR_FILE?variant=int8``  LiteRT through ``deepclf.runtime`` (``&threads=N``)
``litert-raw:VERSION_DIR_OR_FILE?...``      the bare LiteRT interpreter loop, no wrapper (overhead baseline)
``rest://HOST:PORT/MODEL?send=bytes``       TF Serving REST via ``deepclf.clients`` (``send=tensor|bytes``,
                                            ``codec=stdlib`` for hand-written httpx + stdlib json)
``grpc://HOST:PORT/MODEL?send=bytes``       TF Serving gRPC via ``deepclf.clients``
==========================================  ==============================================================

Remote targets also take ``version=``, ``label=``, ``timeout=`` and ``metrics=URL`` (the server's Prometheus
endpoint; REST defaults to its own ``/monitoring/prometheus/metrics``, gRPC on 8500 to the REST port 8501).

Targets are used from several threads at once (concurrency sweeps, the server scenario). Anything that is not
thread-safe (a LiteRT interpreter, an HTTP session) is created per thread, lazily, on that thread's first call:
the scenarios warm every worker up before they measure, so that cost never lands in a measurement.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import ModelFormatError, UsageError
from deepclf.manifest import (
    INPUT_BYTES,
    INPUT_FLOAT,
    OUTPUT_PROBABILITIES,
    SIGNATURE_BYTES,
    SIGNATURE_FLOAT,
    Manifest,
)
from deepclf.preprocessing import encode_image, preprocess
from deepclf.variants import DEFAULT_VARIANT, TFLITE_FILES, VARIANT_NAMES, canonical_variant

#: How targets send images: the float tensor, or the encoded image (JPEG/PNG bytes) for the bytes signature.
SEND_MODES = ("tensor", "bytes")
LOCAL_SCHEMES = ("keras", "savedmodel", "tflite", "litert-raw")
REMOTE_SCHEMES = ("rest", "grpc")
METRICS_PATH = "/monitoring/prometheus/metrics"


@dataclass(frozen=True)
class Batch:
    """The same images in both forms a target may send: float32 ``[N, H, W, 3]`` (0..255) and encoded bytes."""

    tensor: np.ndarray
    encoded: tuple[bytes, ...] = ()

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    @classmethod
    def from_sources(cls, sources: Sequence[Any], size: tuple[int, int]) -> Batch:
        """Preprocess image sources (paths, bytes, arrays) once with the project's contract; keep their bytes."""
        tensor = np.stack([preprocess(s, size) for s in sources]).astype(np.float32, copy=False)
        return cls(tensor, tuple(encode_image(s) for s in sources))

    def take(self, idx: Sequence[int] | slice) -> Batch:
        """A sub-batch (rows ``idx``)."""
        if isinstance(idx, slice):
            return Batch(self.tensor[idx], self.encoded[idx])
        idx = list(idx)
        return Batch(self.tensor[idx], tuple(self.encoded[i] for i in idx) if self.encoded else ())

    def repeat_to(self, n: int) -> Batch:
        """A batch of exactly ``n`` rows, cycling through these images (for offline-scenario batches)."""
        return self.take([i % len(self) for i in range(n)])


class Target:
    """Base class: one model behind one transport. Subclasses implement ``_open``, ``_predict``, ``_close``.

    Attributes that reports use: ``spec`` (as given), ``name`` (short, unique in a report), ``kind`` (parity class:
    ``reference`` for Keras, ``float`` for float conversions, ``quantized``, ``served`` for remote endpoints),
    ``labels`` and ``input_size`` (known after ``open`` for local targets), ``metrics_url`` (Prometheus, remote).
    """

    kind: str = "other"

    def __init__(self, spec: str, name: str | None = None) -> None:
        self.spec = spec
        self.name = name or spec
        self.labels: list[str] | None = None
        self.input_size: tuple[int, int] | None = None
        self.metrics_url: str | None = None
        self.send = "tensor"
        self._local = threading.local()
        self._opened = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Load the model or connect (idempotent). Raises whatever went wrong; callers report it."""
        if not self._opened:
            self._open()
            self._opened = True

    def close(self) -> None:
        """Release what ``open`` took (idempotent, never raises)."""
        if self._opened:
            self._opened = False
            try:
                self._close()
            except Exception:  # noqa: BLE001 - closing must never hide the result being reported
                pass

    def __enter__(self) -> Target:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(self, batch: Batch) -> np.ndarray:
        """Probabilities ``[N, C]`` (float32) for the batch; safe to call from several threads."""
        out = np.asarray(self._predict(batch))
        if out.ndim != 2 or out.shape[0] != len(batch):
            raise ModelFormatError(
                f"{self.name}: expected probabilities of shape [{len(batch)}, C], got shape {tuple(out.shape)}"
            )
        return out

    def info(self) -> dict[str, Any]:
        """What the report says about the target (format, variant, transport, threads, delegate, size...)."""
        return {"spec": self.spec, "name": self.name, "kind": self.kind, "send": self.send}

    # -- for subclasses ----------------------------------------------------------------------------------------
    def _open(self) -> None:  # pragma: no cover - trivial default
        pass

    def _close(self) -> None:  # pragma: no cover - trivial default
        pass

    def _predict(self, batch: Batch) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _per_thread(self, factory: Callable[[], Any]) -> Any:
        """The calling thread's own instance of something that is not thread-safe (made on first use)."""
        obj = getattr(self._local, "obj", None)
        if obj is None:
            obj = factory()
            self._local.obj = obj
        return obj


class FunctionTarget(Target):
    """A target around a plain function ``Batch -> probabilities``; for tests, wrappers and ad-hoc comparisons.

    ``FunctionTarget("permuted", lambda b: inner.predict(b)[:, ::-1], labels=inner.labels)``
    """

    def __init__(
        self,
        name: str,
        fn: Callable[[Batch], np.ndarray],
        *,
        kind: str = "other",
        labels: Sequence[str] | None = None,
        input_size: tuple[int, int] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"function:{name}", name)
        self._fn = fn
        self.kind = kind
        self.labels = list(labels) if labels is not None else None
        self.input_size = input_size
        self._info = dict(info or {})

    def _predict(self, batch: Batch) -> np.ndarray:
        return self._fn(batch)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "format": "function", **self._info}


# -- local targets ---------------------------------------------------------------------------------------------


def _dir_size(path: Path, names: Iterable[str] | None = None) -> int:
    files = [path / n for n in names] if names is not None else [path]
    total = 0
    for f in files:
        if f.is_file():
            total += f.stat().st_size
        elif f.is_dir():
            total += sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
    return total


def model_size_bytes(path: str | os.PathLike[str], fmt: str, variant: str | None = None) -> int | None:
    """Bytes on disk of the model a target loads (the variant's .tflite, or saved_model.pb + variables/)."""
    p = Path(path)
    try:
        if p.is_file():
            return p.stat().st_size
        if fmt in ("tflite", "litert-raw"):
            fname = TFLITE_FILES.get(variant or DEFAULT_VARIANT)
            try:
                fname = Manifest.load(p).variant_file(variant or DEFAULT_VARIANT)
            except Exception:  # noqa: BLE001 - the fixed table is a fine fallback for a size column
                pass
            return _dir_size(p, [fname]) if fname else None
        if fmt == "savedmodel":
            return _dir_size(p, ["saved_model.pb", "variables"])
        if fmt == "keras":
            kfiles = sorted(p.glob("*.keras"))
            return kfiles[0].stat().st_size if kfiles else None
    except OSError:
        return None
    return None


class RunnerTarget(Target):
    """An in-process model through ``deepclf.runtime.load_runner`` (Keras, SavedModel or LiteRT)."""

    def __init__(
        self,
        spec: str,
        path: str,
        fmt: str,
        *,
        variant: str | None = None,
        threads: int | None = None,
        send: str = "tensor",
        name: str | None = None,
    ) -> None:
        super().__init__(spec, name)
        self.path = path
        self.format = fmt
        self.variant = variant
        self.threads = threads
        self.send = send
        if fmt == "keras":
            self.kind = "reference"
        elif fmt == "tflite" and (variant or DEFAULT_VARIANT) != DEFAULT_VARIANT:
            self.kind = "quantized"
        else:
            self.kind = "float"
        self._runner: Any = None
        self._extra: dict[str, Any] = {}

    def _open(self) -> None:
        from deepclf.runtime import load_runner  # noqa: PLC0415 - lazy: the TF runners import TensorFlow

        # One runner for every thread: runners are thread-safe (LiteRT keeps an interpreter per thread).
        runner = load_runner(self.path, format=self.format, variant=self.variant, num_threads=self.threads)
        self._runner = runner
        self.labels = list(runner.manifest.labels)
        self.input_size = tuple(runner.manifest.input.size)  # type: ignore[assignment]
        self._extra["model_file"] = str(runner.path)
        for attr in ("variant", "num_threads", "input_dtype"):
            val = getattr(runner, attr, None)
            if val is not None:
                self._extra[attr] = val

    def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()

    def _predict(self, batch: Batch) -> np.ndarray:
        if self.send == "bytes":
            out = self._runner.run({INPUT_BYTES: np.asarray(batch.encoded, dtype=object)}, signature=SIGNATURE_BYTES)
            return np.asarray(out[OUTPUT_PROBABILITIES])
        return self._runner.predict(batch.tensor)

    def info(self) -> dict[str, Any]:
        info = {
            **super().info(),
            "format": self.format,
            "transport": "in-process",
            "path": self.path,
            "variant": self.variant or (DEFAULT_VARIANT if self.format == "tflite" else None),
            "threads": self.threads,
            "model_bytes": model_size_bytes(self._extra.get("model_file", self.path), self.format, self.variant),
        }
        if self.format == "tflite":
            # LiteRT applies its XNNPACK delegate to CPU models by default (int8 included, since TF 2.x).
            info["delegate"] = "XNNPACK (LiteRT default)"
        info.update(self._extra)
        return info


class RawLiteRTTarget(Target):
    """The bare LiteRT interpreter loop (``set_tensor``/``invoke``/``get_tensor``), to price ``deepclf.runtime``.

    Quantized inputs and outputs are (de)quantized with the tensor's scale and zero point. The output read is the
    probabilities: the one rank-2 output ``[N, C]`` (``classes`` is rank 1; tensor names inside a converted model
    are graph names like ``StatefulPartitionedCall:0``, so names cannot tell them apart).
    """

    kind = "float"

    def __init__(
        self, spec: str, path: str, *, variant: str | None = None, threads: int | None = None, name: str | None = None
    ) -> None:
        super().__init__(spec, name)
        self.path = path
        self.variant = variant
        self.threads = threads
        if (variant or DEFAULT_VARIANT) != DEFAULT_VARIANT:
            self.kind = "quantized"
        self._file: Path | None = None

    def _resolve(self) -> Path:
        p = Path(self.path)
        if p.is_file():
            return p
        if not p.is_dir():
            raise ModelFormatError(f"{self.spec}: no such model file or folder: {p}")
        try:
            fname = Manifest.load(p).variant_file(self.variant or DEFAULT_VARIANT)
        except ModelFormatError:
            fname = TFLITE_FILES.get(self.variant or DEFAULT_VARIANT, TFLITE_FILES[DEFAULT_VARIANT])
        f = p / fname
        if not f.is_file():
            raise ModelFormatError(f"{self.spec}: no {fname} in {p}; run `deepclf convert` to make the TFLite variants")
        return f

    def _load(self) -> Any:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 - optional edge dependency

        interp = Interpreter(model_path=str(self._file), num_threads=self.threads)
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]
        return {"interp": interp, "in": inp, "out": _probabilities_output(interp), "batch": int(inp["shape"][0])}

    def _open(self) -> None:
        self._file = self._resolve()
        try:
            m = Manifest.load(self._file)
            self.labels, self.input_size = list(m.labels), tuple(m.input.size)  # type: ignore[assignment]
        except ModelFormatError:
            pass
        state = self._load()
        self._local.obj = state
        if self.input_size is None:
            self.input_size = (int(state["in"]["shape"][1]), int(state["in"]["shape"][2]))

    def _close(self) -> None:
        self._local = threading.local()

    def _predict(self, batch: Batch) -> np.ndarray:
        s = self._per_thread(self._load)
        interp, inp = s["interp"], s["in"]
        x = batch.tensor
        if s["batch"] != x.shape[0]:
            interp.resize_tensor_input(inp["index"], list(x.shape))
            interp.allocate_tensors()
            s["batch"] = int(x.shape[0])
            s["in"] = inp = interp.get_input_details()[0]
            s["out"] = _probabilities_output(interp)
        if np.issubdtype(inp["dtype"], np.integer):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        out = interp.get_tensor(s["out"]["index"])
        if np.issubdtype(out.dtype, np.integer):
            scale, zero = s["out"]["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return out

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "format": "tflite",
            "transport": "in-process (raw interpreter)",
            "path": self.path,
            "variant": self.variant or DEFAULT_VARIANT,
            "threads": self.threads,
            "delegate": "XNNPACK (LiteRT default)",
            "model_bytes": model_size_bytes(self.path, "tflite", self.variant),
        }


def _probabilities_output(interp: Any) -> dict[str, Any]:
    outs = interp.get_output_details()
    return next((o for o in outs if len(o["shape"]) == 2), outs[0])


# -- remote targets --------------------------------------------------------------------------------------------


class RemoteTarget(Target):
    """A model served over REST or gRPC (our edge server or TF Serving), called through ``deepclf.clients``."""

    kind = "served"

    def __init__(
        self,
        spec: str,
        transport: str,
        host: str,
        port: int,
        model: str,
        *,
        send: str = "tensor",
        version: int | None = None,
        label: str | None = None,
        codec: str = "deepclf",
        timeout: float = 30.0,
        metrics_url: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(spec, name)
        self.transport = transport
        self.host, self.port, self.model = host, port, model
        self.send = send
        self.version, self.label = version, label
        self.codec = codec
        self.timeout = timeout
        if metrics_url is None:
            rest_port = port if transport == "rest" else (8501 if port == 8500 else None)
            metrics_url = f"http://{host}:{rest_port}{METRICS_PATH}" if rest_port else None
        self.metrics_url = metrics_url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}" if self.transport == "rest" else f"{self.host}:{self.port}"

    def _make_client(self) -> Any:
        if self.transport == "rest" and self.codec == "stdlib":
            return _StdlibRestClient(self.base_url, timeout=self.timeout)
        from deepclf import clients  # noqa: PLC0415 - lazy: a REST-only run never imports grpc

        cls = clients.RestClient if self.transport == "rest" else clients.GrpcClient
        # No retries: a benchmark counts a failed request as an error instead of hiding it in a slower one.
        return cls(self.base_url, timeout=self.timeout, retry=clients.NO_RETRIES)

    def _open(self) -> None:
        client = self._make_client()
        self._local.obj = client
        self._clients = [client]
        # The model's metadata says which size to preprocess for (and proves the server is up and has the model).
        if hasattr(client, "metadata"):
            kw: dict[str, Any] = {"version": self.version, "label": self.label}
            md = client.metadata(self.model, **{k: v for k, v in kw.items() if v is not None})
            self.input_size = md.input_size()

    def _close(self) -> None:
        # Worker threads' own clients go with their thread-local storage; close the ones we can reach.
        for c in getattr(self, "_clients", []):
            close = getattr(c, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing must not mask results
                    pass
        self._clients = []
        self._local = threading.local()

    def _predict(self, batch: Batch) -> np.ndarray:
        client = self._per_thread(self._make_client)
        kw: dict[str, Any] = {"model": self.model}
        if self.version is not None:
            kw["version"] = self.version
        if self.label is not None:
            kw["label"] = self.label
        if self.send == "bytes":
            out = client.predict(
                {INPUT_BYTES: np.asarray(batch.encoded, dtype=object)}, signature=SIGNATURE_BYTES, **kw
            )
        else:
            out = client.predict({INPUT_FLOAT: batch.tensor}, signature=SIGNATURE_FLOAT, **kw)
        return np.asarray(out[OUTPUT_PROBABILITIES])

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "format": "remote",
            "transport": self.transport,
            "url": self.base_url,
            "model": self.model,
            "version": self.version,
            "codec": self.codec if self.transport == "rest" else "protobuf",
            "metrics_url": self.metrics_url,
        }


class _StdlibRestClient:
    """What a user writes by hand from TF Serving's REST docs: an HTTP client + stdlib ``json``, row format.

    A baseline for pricing our codec (``deepclf.protocol``, orjson); deliberately not optimised. Its HTTP client
    is ``RestClient``'s (``httpx.Client``), so the comparison prices the codec alone.
    """

    def __init__(self, base_url: str, *, timeout: float) -> None:
        import httpx  # noqa: PLC0415 - edge extra

        self._session = httpx.Client()
        self._base = base_url
        self._timeout = timeout

    def predict(
        self, inputs: Mapping[str, np.ndarray], *, model: str, version: int | None = None, label: str | None = None,
        signature: str = SIGNATURE_FLOAT,
    ) -> dict[str, np.ndarray]:
        (key, value), = inputs.items()
        if value.dtype == object:  # binary strings travel as {"b64": ...} in TF Serving's JSON
            instances: list[Any] = [{key: {"b64": base64.b64encode(v).decode("ascii")}} for v in value]
        else:
            instances = [{key: row} for row in value.tolist()]
        path = f"/v1/models/{model}"
        if version is not None:
            path += f"/versions/{version}"
        elif label is not None:
            path += f"/labels/{label}"
        body = json.dumps({"signature_name": signature, "instances": instances})
        r = self._session.post(self._base + path + ":predict", content=body, timeout=self._timeout,
                               headers={"Content-Type": "application/json"})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code} from {path}:predict: {r.text[:200]}")
        preds = json.loads(r.text)["predictions"]
        if preds and isinstance(preds[0], dict):
            return {k: np.asarray([p[k] for p in preds]) for k in preds[0]}
        return {OUTPUT_PROBABILITIES: np.asarray(preds, dtype=np.float32)}

    def close(self) -> None:
        self._session.close()


# -- parsing ---------------------------------------------------------------------------------------------------


@dataclass
class TargetSpec:
    """A parsed spec string: scheme, location, and query options (all strings)."""

    scheme: str
    location: str
    options: dict[str, str] = field(default_factory=dict)


def split_spec(spec: str) -> TargetSpec:
    """``"tflite:models/1?variant=int8"`` -> ``TargetSpec("tflite", "models/1", {"variant": "int8"})``."""
    if not isinstance(spec, str) or ":" not in spec:
        raise UsageError(
            f"target spec must look like SCHEME:LOCATION (keras:RUN_DIR, tflite:DIR?variant=int8, "
            f"rest://HOST:PORT/MODEL, grpc://HOST:PORT/MODEL), got {spec!r}"
        )
    scheme, rest = spec.split(":", 1)
    scheme = scheme.strip().lower()
    location, _, query = rest.partition("?")
    try:
        options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise UsageError(f"target spec {spec!r}: bad query string {query!r} (expected key=value&key=value)") from exc
    return TargetSpec(scheme, location, options)


def _int_opt(spec: str, options: dict[str, str], key: str) -> int | None:
    if key not in options or options[key] == "":
        return None
    try:
        val = int(options[key])
    except ValueError:
        raise UsageError(f"target spec {spec!r}: {key} must be an integer, got {options[key]!r}") from None
    if val < 0 or (val == 0 and key != "version"):
        raise UsageError(f"target spec {spec!r}: {key} must be positive, got {val}")
    return val


_KNOWN_OPTIONS = {
    "keras": {"name", "send"},
    "savedmodel": {"name", "send"},
    "tflite": {"name", "send", "variant", "threads"},
    "litert-raw": {"name", "variant", "threads"},
    "rest": {"name", "send", "version", "label", "codec", "timeout", "metrics"},
    "grpc": {"name", "send", "version", "label", "timeout", "metrics"},
}


def parse_target(spec: str, *, threads: int | None = None) -> Target:
    """Build the target a spec string names (see the module docstring); ``threads`` is the LiteRT default.

    Raises ``UsageError`` for a malformed spec, never for an unreachable server or a missing file: those are
    found by ``open()`` and reported as a failed target.
    """
    ts = split_spec(spec)
    if ts.scheme not in _KNOWN_OPTIONS:
        raise UsageError(
            f"unknown target scheme {ts.scheme!r} in {spec!r}; expected one of {', '.join(_KNOWN_OPTIONS)}"
        )
    unknown = sorted(set(ts.options) - _KNOWN_OPTIONS[ts.scheme])
    if unknown:
        raise UsageError(
            f"target spec {spec!r}: unknown option(s) {', '.join(unknown)}; "
            f"{ts.scheme} takes {', '.join(sorted(_KNOWN_OPTIONS[ts.scheme]))}"
        )
    opts = ts.options
    name = opts.get("name") or None
    send = opts.get("send", "tensor") or "tensor"
    if send not in SEND_MODES:
        raise UsageError(f"target spec {spec!r}: send must be one of {', '.join(SEND_MODES)}, got {send!r}")
    raw_variant = opts.get("variant") or None
    variant = canonical_variant(raw_variant) if raw_variant else None  # "tflite-int8" -> "int8" in names/reports
    if raw_variant is not None and variant is None:
        raise UsageError(
            f"target spec {spec!r}: unknown TFLite variant {raw_variant!r}; expected one of {', '.join(VARIANT_NAMES)}"
        )
    n_threads = _int_opt(spec, opts, "threads") or threads

    if ts.scheme in LOCAL_SCHEMES:
        if not ts.location:
            raise UsageError(f"target spec {spec!r} names no model path (expected {ts.scheme}:PATH)")
        if ts.scheme == "litert-raw":
            return RawLiteRTTarget(spec, ts.location, variant=variant, threads=n_threads,
                                   name=name or _default_name("litert-raw", variant, n_threads))
        return RunnerTarget(spec, ts.location, ts.scheme, variant=variant, threads=n_threads, send=send,
                            name=name or _default_name(ts.scheme, variant, n_threads, send))

    parsed = urllib.parse.urlsplit(f"{ts.scheme}:{ts.location}")
    model = parsed.path.strip("/")
    if not parsed.hostname or not model or "/" in model:
        raise UsageError(f"target spec {spec!r}: expected {ts.scheme}://HOST:PORT/MODEL (one model name)")
    try:
        port = parsed.port or (8501 if ts.scheme == "rest" else 8500)
    except ValueError:
        raise UsageError(f"target spec {spec!r}: bad port in {parsed.netloc!r}") from None
    codec = opts.get("codec", "deepclf") or "deepclf"
    if codec not in ("deepclf", "stdlib"):
        raise UsageError(f"target spec {spec!r}: codec must be 'deepclf' or 'stdlib', got {codec!r}")
    try:
        timeout = float(opts.get("timeout", 30.0))
    except ValueError:
        raise UsageError(f"target spec {spec!r}: timeout must be a number of seconds, got {opts['timeout']!r}") from None
    dflt = f"{ts.scheme}-{send}" + ("-stdlib" if codec == "stdlib" else "")
    return RemoteTarget(
        spec, ts.scheme, parsed.hostname, port, model, send=send, version=_int_opt(spec, opts, "version"),
        label=opts.get("label") or None, codec=codec, timeout=timeout, metrics_url=opts.get("metrics") or None,
        name=name or dflt,
    )


def _default_name(fmt: str, variant: str | None, threads: int | None, send: str = "tensor") -> str:
    name = fmt
    if fmt in ("tflite", "litert-raw"):
        name += f"-{variant or DEFAULT_VARIANT}"
    if threads:
        name += f"-t{threads}"
    if send == "bytes":
        name += "-bytes"
    return name


def parse_targets(specs: Iterable[str | Target], *, threads: int | None = None) -> list[Target]:
    """Parse several specs (``Target`` objects pass through) and make their names unique (``name#2``)."""
    out: list[Target] = []
    seen: dict[str, int] = {}
    for s in specs:
        t = s if isinstance(s, Target) else parse_target(s, threads=threads)
        n = seen.get(t.name, 0) + 1
        seen[t.name] = n
        if n > 1:
            t.name = f"{t.name}#{n}"
        out.append(t)
    if not out:
        raise UsageError("no targets given; name at least one, e.g. tflite:models/flowers/1?variant=int8")
    return out
