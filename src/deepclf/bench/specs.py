"""Target spec strings: ``parse_target`` builds the target one names, ``parse_targets`` several (unique names).

Spec strings (``?name=...`` renames any target in reports):

==========================================  ==============================================================
``keras:RUN_DIR_OR_FILE``                   in-process Keras (``model(x)`` through the Keras runner)
``savedmodel:VERSION_DIR``                  in-process SavedModel (TensorFlow)
``tflite:VERSION_DIR_OR_FILE?variant=int8``  LiteRT through ``deepclf.runtime`` (``&threads=N``)
``litert-raw:VERSION_DIR_OR_FILE?...``      the bare LiteRT interpreter loop, no wrapper (overhead baseline)
``local:VERSION_DIR_OR_FILE?send=bytes``    LiteRT through ``deepclf.clients.LocalClient.predict``
                                            (``variant=``, ``threads=``; ``send=bytes``: image-bytes signature)
``rest://HOST:PORT/MODEL?send=bytes``       TF Serving REST via ``deepclf.clients`` (``send=tensor|bytes``,
                                            ``codec=stdlib`` for hand-written httpx + stdlib json)
``grpc://HOST:PORT/MODEL?send=bytes``       TF Serving gRPC via ``deepclf.clients``
``rows://HOST:PORT/MODEL?size=180``         TF Serving REST row format, each body encoded once and replayed
                                            over ``http.client`` (``PeerTarget``: the peers' load generator;
                                            ``send=bytes`` for our image-bytes signature)
``kserve:VERSION_DIR_OR_FILE?threads=2``    KServe's ModelServer started on the fp32 ``.tflite``, measured as
``fastapi:VERSION_DIR_OR_FILE``             ``rows://`` (``python=`` the peers' venv; ``deepclf.bench.peers``)
==========================================  ==============================================================

Remote targets also take ``version=``, ``label=``, ``timeout=`` and ``metrics=URL`` (the server's Prometheus
endpoint; REST defaults to its own ``/monitoring/prometheus/metrics``, gRPC on 8500 to the REST port 8501)::

    parse_target("tflite:models/flowers/1?variant=int8&threads=2").name    # "tflite-int8-t2"
    parse_targets(["grpc://edge:8500/flowers", "grpc://edge:8500/flowers"])  # names grpc-tensor, grpc-tensor#2
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from deepclf.bench.local_targets import LocalClientTarget, RawLiteRTTarget, RunnerTarget
from deepclf.bench.remote_targets import RemoteTarget
from deepclf.bench.targets import Target
from deepclf.errors import UsageError
from deepclf.variants import DEFAULT_VARIANT, VARIANT_NAMES, canonical_variant

#: How targets send images: the float tensor, or the encoded image (JPEG/PNG bytes) for the bytes signature.
SEND_MODES = ("tensor", "bytes")
LOCAL_SCHEMES = ("keras", "savedmodel", "tflite", "litert-raw", "local")
REMOTE_SCHEMES = ("rest", "grpc", "rows")


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
    "local": {"name", "send", "variant", "threads"},
    "rest": {"name", "send", "version", "label", "codec", "timeout", "metrics"},
    "grpc": {"name", "send", "version", "label", "timeout", "metrics"},
    "rows": {"name", "send", "size", "timeout"},
    "kserve": {"name", "threads", "python"},
    "fastapi": {"name", "threads", "python"},
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
            return RawLiteRTTarget(
                spec,
                ts.location,
                variant=variant,
                threads=n_threads,
                name=name or _default_name("litert-raw", variant, n_threads),
            )
        if ts.scheme == "local":
            return LocalClientTarget(
                spec,
                ts.location,
                variant=variant,
                threads=n_threads,
                send=send,
                name=name or _default_name("local", variant, n_threads, send),
            )
        return RunnerTarget(
            spec,
            ts.location,
            ts.scheme,
            variant=variant,
            threads=n_threads,
            send=send,
            name=name or _default_name(ts.scheme, variant, n_threads, send),
        )

    if ts.scheme in ("kserve", "fastapi"):
        from deepclf.bench.peers.target import PeerServerTarget

        if not ts.location:
            raise UsageError(f"target spec {spec!r} names no model (expected {ts.scheme}:VERSION_DIR or a .tflite)")
        return PeerServerTarget(
            spec,
            ts.scheme,
            ts.location,
            threads=_int_opt(spec, opts, "threads") or 2,
            python=opts.get("python") or None,
            name=name or ts.scheme,
        )

    parsed = urllib.parse.urlsplit(f"{ts.scheme}:{ts.location}")
    model = parsed.path.strip("/")
    if not parsed.hostname or not model or "/" in model:
        raise UsageError(f"target spec {spec!r}: expected {ts.scheme}://HOST:PORT/MODEL (one model name)")
    try:
        port = parsed.port or (8500 if ts.scheme == "grpc" else 8501)
    except ValueError:
        raise UsageError(f"target spec {spec!r}: bad port in {parsed.netloc!r}") from None
    if ts.scheme == "rows":
        from deepclf.bench.peers.target import PeerTarget

        size = _int_opt(spec, opts, "size")
        try:
            row_timeout = float(opts.get("timeout", 30.0))
        except ValueError:
            raise UsageError(f"target spec {spec!r}: timeout must be a number, got {opts['timeout']!r}") from None
        target = PeerTarget(
            name or f"rows-{send}",
            f"http://{parsed.hostname}:{port}",
            model,
            input_size=(size, size) if size else None,
            timeout=row_timeout,
            send=send,
        )
        target.spec = spec
        return target
    codec = opts.get("codec", "deepclf") or "deepclf"
    if codec not in ("deepclf", "stdlib"):
        raise UsageError(f"target spec {spec!r}: codec must be 'deepclf' or 'stdlib', got {codec!r}")
    try:
        timeout = float(opts.get("timeout", 30.0))
    except ValueError:
        raise UsageError(
            f"target spec {spec!r}: timeout must be a number of seconds, got {opts['timeout']!r}"
        ) from None
    dflt = f"{ts.scheme}-{send}" + ("-stdlib" if codec == "stdlib" else "")
    return RemoteTarget(
        spec,
        ts.scheme,
        parsed.hostname,
        port,
        model,
        send=send,
        version=_int_opt(spec, opts, "version"),
        label=opts.get("label") or None,
        codec=codec,
        timeout=timeout,
        metrics_url=opts.get("metrics") or None,
        name=name or dflt,
    )


def _default_name(fmt: str, variant: str | None, threads: int | None, send: str = "tensor") -> str:
    name = fmt
    if fmt in ("tflite", "litert-raw", "local"):
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
