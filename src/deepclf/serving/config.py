"""What the edge server serves and how: ``ServerConfig`` and the models it lists (``ModelConfig``).

A server serves one model (``model_name`` + ``model_base_path``, like ``tensorflow_model_server --model_name``)
or several from a TF Serving ``models.config`` file (``--model_config_file``), parsed with ``text_format`` into
``tensorflow.serving.ModelServerConfig`` from a private descriptor pool (``modelconfig.py``)::

    cfg = ServerConfig(model_name="flowers", model_base_path="models/flowers", port=0, rest_api_port=0)
    cfg = ServerConfig(model_config_file="models.config", format="int8", enable_batching=True)
    cfg.models()        # [ModelConfig(name='flowers', base_path=..., policy='latest', ...)]

Version policies follow TF Serving: ``latest`` (the N highest numeric folders, N=1 by default), ``all``, or
``specific`` (listed versions); ``version_labels`` map a label (``stable``, ``canary``) to a version.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepclf.errors import UsageError
from deepclf.protocol.limits import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_ROWS, RequestLimits
from deepclf.serving.modelspec import POLICIES, ModelConfig
from deepclf.variants import VARIANT_NAMES, canonical_variant

__all__ = ["POLICIES", "SERVE_FORMATS", "ModelConfig", "ServerConfig", "bracket_host"]

#: What ``--format`` takes: a TFLite variant (``deepclf.variants``; LiteRT, TF-free) or the SavedModel (needs the
#: ``tf`` extra). The runner-format spelling (``tflite-int8``, what /monitoring and metrics show) is accepted too.
SERVE_FORMATS = (*VARIANT_NAMES, "savedmodel")
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
#: Pixels per client-sent image (checked from the image header, before decoding): 4096 x 3072 = 12.6 MP, a 12 MP
#: phone photo (4032 x 3024) fits. Pillow decodes into 4 bytes per pixel, so the largest admitted image costs
#: ~50 MB while it is decoded; a 6000 x 6000 JPEG of 563 KB would cost 137 MB.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 3072
#: Said beside a deepclf-only request limit in its refusals (what TF Serving does, and that the flag changes it).
NOT_IN_TF_SERVING = "; a deepclf limit: TF Serving has none"
#: Pixels of all the images of one request (decoded one at a time: this bounds the time, not the memory).
REQUEST_PIXELS_PER_IMAGE_LIMIT = 4


#: XNNPACK's speed-up flattens past 4 threads for CNNs of this size; more cores go to more interpreters.
MAX_DEFAULT_INTERPRETER_THREADS = 4


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, so a container's cpuset counts, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def default_interpreter_threads() -> int:
    """XNNPACK threads per interpreter when ``--interpreter_threads`` is not given: every CPU, up to 4.

    Why: on the 2-core machine, one interpreter with every core beat several one-thread interpreters in latency
    and throughput, REST and gRPC alike (the runs and their command: docs/results/2026-11-30-thread-defaults.md).
    """
    return min(usable_cpus(), MAX_DEFAULT_INTERPRETER_THREADS)


def default_threads() -> int:
    """Inference worker threads when ``--threads`` is not given: the CPUs left after one interpreter's threads
    (1 on up to 4 CPUs). One worker keeps its interpreter's weights hot in cache for a lone client; requests
    still overlap their decoding and encoding with it (they run in the same pool, queued, never in parallel)."""
    return max(1, usable_cpus() // default_interpreter_threads())


#: ``absl::SimpleAtoi`` into ``int32``, as TF Serving reads a channel argument's value (server.cc).
_INT32 = re.compile(r"\s*[+-]?\d+\s*")


def parse_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """``--grpc_channel_arguments``: TF Serving's comma-separated ``key=value`` list of gRPC server options
    (server.cc ``parseGrpcChannelArgs``); a value that parses as a 32-bit integer is passed as an ``int``, any other
    as a string (gRPC ignores, with a log line, options it does not know)::

        parse_channel_arguments("grpc.max_connection_age_ms=30000,grpc.primary_user_agent=edge")
        # (("grpc.max_connection_age_ms", 30000), ("grpc.primary_user_agent", "edge"))

    An entry without ``=`` or with an empty key is refused, naming it (TF Serving's parser reads past the end of
    such an entry). A value may itself hold ``=`` (split at the first one).
    """
    out: list[tuple[str, int | str]] = []
    if not text:
        return ()
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(
                f"--grpc_channel_arguments: {item!r} is not key=value; expected a comma-separated list of gRPC "
                "channel arguments, e.g. grpc.max_connection_age_ms=30000,grpc.keepalive_time_ms=10000"
            )
        number = int(value) if _INT32.fullmatch(value) else None
        out.append((key, number if number is not None and -(2**31) <= number < 2**31 else value))
    return tuple(out)


def bracket_host(host: str) -> str:
    """``host`` as it goes before ``:port`` in an address or URL (an IPv6 literal in brackets, once)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass
class ServerConfig:
    """Everything ``EdgeServer`` needs; the fields mirror ``tensorflow_model_server``'s flags.

    ``port`` / ``rest_api_port``: gRPC and REST ports (0 picks a free port; ``None`` disables that API).
    ``format``: the TFLite variant to serve (fp32, fp16, dynamic, int8) or ``savedmodel`` (TensorFlow).
    ``threads``: inference worker threads (one LiteRT interpreter each); ``interpreter_threads``: XNNPACK threads
    inside each interpreter. ``poll_seconds``: how often base paths are rescanned (0 disables polling).
    ``runner_wrapper``: called on each loaded runner, its result is served (tests make slow or failing servers).
    ``startup_timeout``: with polling on, how long ``start()`` waits for a base path that does not exist yet or holds
    no version yet (storage mounted late); ``None``: for ever, as TF Serving (``deepclf serve``'s setting).
    ``max_num_load_retries`` / ``load_retry_interval_micros``: a version's first load is retried in place that often
    (``deepclf serve``: 5 times, 1 min apart, as TF Serving; here 0 by default, so a broken model fails at once).
    Admission (``deepclf.protocol.limits``, ``deepclf.serving.overload``): ``max_request_rows`` (rows per request;
    ``None``: 32, or ``max_batch_size`` with batching when larger), ``max_request_bytes`` (decoded tensor bytes per request),
    ``max_image_pixels`` (per encoded image, from its header), ``max_request_pixels`` (all the images of one
    request; ``None``: 4 x ``max_image_pixels``), ``max_in_flight`` (inference calls admitted at once, queued +
    running; ``None``: ``DEFAULT_MAX_IN_FLIGHT``) and ``max_queued_bytes`` (their request bytes), beyond which a call
    is refused with UNAVAILABLE / 503 as it is when it could not start before its deadline (``rest_api_timeout_ms``,
    or a gRPC call's own).
    TLS (``deepclf.serving.tls``): ``ssl_config_file`` (TF Serving's ``SSLConfig`` text proto) or ``ssl_cert`` +
    ``ssl_key`` files (``str``, path or PEM ``bytes``), ``ssl_client_ca`` to require client certificates signed by
    it (mutual TLS). TLS applies to gRPC, as in TF Serving; ``rest_ssl=True`` serves REST over HTTPS with the same
    keys too (REST stays plain HTTP otherwise).
    ``rest_api_enable_cors_support``: TF Serving's CORS headers on every REST answer under ``/v1/``.
    ``grpc_socket_path``: gRPC on that Unix socket too (``port=None``: only there). ``grpc_channel_arguments``:
    gRPC server options (``parse_channel_arguments`` reads TF Serving's ``k=v,k=v``).
    """

    model_name: str | None = None
    model_base_path: str | os.PathLike[str] | None = None
    model_config_file: str | os.PathLike[str] | None = None
    host: str = "127.0.0.1"
    port: int | None = 8500
    rest_api_port: int | None = 8501
    format: str = "fp32"
    threads: int = field(default_factory=default_threads)
    interpreter_threads: int = field(default_factory=default_interpreter_threads)
    poll_seconds: float = 1.0
    enable_batching: bool = False
    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 100
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    batching_parameters_file: str | os.PathLike[str] | None = None
    config_poll_seconds: float = 0.0
    enable_model_warmup: bool = True
    rest_api_timeout_ms: int = 30000
    max_num_load_retries: int = 0
    load_retry_interval_micros: int = 60_000_000
    allow_version_labels_for_unavailable_models: bool = False
    #: ``--enable_signature_method_name_check``: Predict, Classify, Regress and MultiInference refuse a signature
    #: whose ``method_name`` is not theirs (TF Serving's util.cc feature; off by default there too).
    enable_signature_method_name_check: bool = False
    monitoring_config_file: str | os.PathLike[str] | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_request_rows: int | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_request_pixels: int | None = None
    max_in_flight: int | None = None
    max_queued_bytes: int | None = None
    grpc_max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    grpc_workers: int = 16
    startup_timeout: float | None = 120.0
    access_log: bool = True
    runner_wrapper: Callable[[Any], Any] | None = None
    model_configs: Sequence[ModelConfig] = ()
    ssl_config_file: str | os.PathLike[str] | None = None
    ssl_cert: str | os.PathLike[str] | bytes | None = None
    ssl_key: str | os.PathLike[str] | bytes | None = None
    ssl_client_ca: str | os.PathLike[str] | bytes | None = None
    rest_ssl: bool = False
    rest_api_enable_cors_support: bool = False
    grpc_socket_path: str | None = None
    grpc_channel_arguments: tuple[tuple[str, int | str], ...] = ()

    def __post_init__(self) -> None:
        self.format = canonical_variant(self.format) or self.format  # "tflite-int8" -> "int8", shown canonical
        if self.format not in SERVE_FORMATS:
            raise UsageError(f"--format must be one of {', '.join(SERVE_FORMATS)}, got {self.format!r}")
        for name in ("threads", "interpreter_threads", "max_batch_size", "num_batch_threads", "grpc_workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        for name in ("port", "rest_api_port"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 0 <= value <= 65535):
                raise UsageError(f"{name} must be 0..65535 (0 = any free port), got {value!r}")
        if self.port is None and self.rest_api_port is None and not self.grpc_socket_path:
            raise UsageError("both the gRPC port and the REST port are disabled; enable at least one")
        if self.max_body_bytes < 1 or self.grpc_max_message_bytes < 1:
            raise UsageError("max_body_bytes and grpc_max_message_bytes must be positive")
        for name in ("max_request_rows", "max_in_flight", "max_request_pixels", "max_queued_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"--{name} must be a positive integer (or unset for the default), got {value!r}")
        for name in ("max_request_bytes", "max_image_pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"--{name} must be a positive integer, got {value!r}")
        if self.batch_timeout_micros < 0 or self.poll_seconds < 0 or self.config_poll_seconds < 0:
            raise UsageError("batch_timeout_micros, poll_seconds and config_poll_seconds must not be negative")
        if self.batching_parameters_file is not None:
            if not self.enable_batching:
                raise UsageError(
                    "--batching_parameters_file is set without --enable_batching (TF Serving refuses this too); "
                    "add --enable_batching"
                )
            from deepclf.serving.batching import load_batching_parameters

            params = load_batching_parameters(self.batching_parameters_file)
            self.max_batch_size = params.max_batch_size
            self.batch_timeout_micros = params.batch_timeout_micros
            self.num_batch_threads = params.num_batch_threads
            self.max_enqueued_batches = params.max_enqueued_batches
            self.allowed_batch_sizes = params.allowed_batch_sizes
            self.pad_variable_length_inputs = params.pad_variable_length_inputs
        if self.max_num_load_retries < 0:
            raise UsageError(f"max_num_load_retries must be >= 0, got {self.max_num_load_retries}")
        if self.max_enqueued_batches < 1:
            raise UsageError(
                f"max_enqueued_batches must be >= 1 (how many batches may wait), got {self.max_enqueued_batches}"
            )
        if self.allowed_batch_sizes:
            from deepclf.serving.batching import BatchingParameters

            BatchingParameters(
                max_batch_size=self.max_batch_size, allowed_batch_sizes=tuple(self.allowed_batch_sizes)
            ).validate("allowed_batch_sizes")
        if (self.ssl_cert is None) != (self.ssl_key is None):
            raise UsageError("TLS needs both --ssl_cert and --ssl_key (the server certificate and its private key)")
        if self.ssl_client_ca is not None and self.ssl_cert is None:
            raise UsageError("--ssl_client_ca (mutual TLS) needs --ssl_cert and --ssl_key too")
        if self.ssl_config_file is not None and self.ssl_cert is not None:
            raise UsageError("give --ssl_config_file or --ssl_cert/--ssl_key, not both")
        if self.rest_ssl and not self.tls:
            raise UsageError("rest_ssl (--rest_api_ssl) needs certificates: --ssl_cert/--ssl_key or --ssl_config_file")

    def request_limits(self) -> RequestLimits:
        """What one request may allocate: rows (default: the batch size with batching, else 32) and bytes."""
        rows = self.max_request_rows
        if rows is None:  # with batching, the batcher refuses a task over max_batch_size in TF Serving's words
            rows = (
                max(self.max_batch_size, DEFAULT_MAX_REQUEST_ROWS) if self.enable_batching else DEFAULT_MAX_REQUEST_ROWS
            )
        return RequestLimits(max_rows=rows, max_bytes=self.max_request_bytes, note=NOT_IN_TF_SERVING)

    def image_budget(self) -> Any:
        """The ``deepclf.preprocessing.ImageBudget`` set on every runner: per image and per request pixels."""
        from deepclf.preprocessing import ImageBudget

        total = self.max_request_pixels or REQUEST_PIXELS_PER_IMAGE_LIMIT * self.max_image_pixels
        return ImageBudget(
            self.max_image_pixels,
            total,
            owner="this server's",
            max_pixels_setting=f"--max_image_pixels={self.max_image_pixels}{NOT_IN_TF_SERVING}",
            max_total_pixels_setting=f"--max_request_pixels={total}{NOT_IN_TF_SERVING}",
        )

    def admission(self, on_wait: Callable[[float], None] | None = None) -> Any:
        """The server's ``deepclf.serving.overload.Admission``: ``max_in_flight`` calls and ``max_queued_bytes``
        request bytes admitted at once (each ``None``: the module's default)."""
        from deepclf.serving.overload import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_QUEUED_BYTES, Admission

        return Admission(
            self.max_in_flight or DEFAULT_MAX_IN_FLIGHT,
            self.max_queued_bytes or DEFAULT_MAX_QUEUED_BYTES,
            on_wait=on_wait,
        )

    @property
    def tls(self) -> bool:
        """Whether TLS settings are given (gRPC is served over TLS)."""
        return self.ssl_config_file is not None or self.ssl_cert is not None

    def models(self) -> list[ModelConfig]:
        """The models to serve: ``model_configs``, else the config file, else ``model_name``/``model_base_path``."""
        if self.model_configs:
            models = list(self.model_configs)
        elif self.model_config_file:
            # Lazy: protobuf's text parser is loaded only when a config file is given (no import cycle: modelconfig
            # depends on modelspec, not on this module).
            from deepclf.serving.modelconfig import load_model_config_file

            models = load_model_config_file(self.model_config_file)
        elif self.model_base_path:
            base = Path(self.model_base_path)
            models = [ModelConfig(name=self.model_name or base.name, base_path=str(base))]
        else:
            raise UsageError("nothing to serve: give --model_base_path (and --model_name) or --model_config_file")
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UsageError(f"model names must be unique; repeated: {dupes}")
        return models
