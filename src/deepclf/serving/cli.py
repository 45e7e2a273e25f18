"""``deepclf serve``: the edge server in the foreground, with ``tensorflow_model_server``'s flags.

::

    deepclf serve --model_name flowers --model_base_path models/flowers              # gRPC 8500, REST 8501
    deepclf serve --model_config_file models.config --format int8 --enable_batching
    deepclf serve --model_base_path models/flowers --port 0 --rest_api_port 0         # free ports, printed
    deepclf serve --model_base_path models/flowers --ssl_cert s.pem --ssl_key s.key --ssl_client_ca ca.pem
    deepclf serve --model_base_path models/flowers --ssl_config_file ssl.config     # TF Serving's SSLConfig

Runs until SIGTERM or SIGINT, then stops accepting, drains in-flight requests and exits 0. Access logs (one JSON
line per request) and server logs go to stderr. Registration imports nothing heavy.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepclf.errors import UsageError
from deepclf.serving.config import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    SERVE_FORMATS,
    ServerConfig,
    default_interpreter_threads,
    default_threads,
    parse_channel_arguments,
)
from deepclf.variants import DEFAULT_VARIANT, variant_arg


def _port(text: str) -> int | None:
    value = int(text)
    return None if value < 0 else value


def _bool(text: str) -> bool:
    """TF Serving's boolean values: ``true``/``false``/``1``/``0`` (any case)."""
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true, false, 1 or 0, got {text!r}")


#: tensorflow_model_server flags with no meaning for a LiteRT edge server: accepted, one warning line, no effect.
#: The value says whether the flag is boolean (a bare ``--flag`` takes no value).
IGNORED_FLAGS: dict[str, bool] = {
    "enable_per_model_batching_parameters": True,
    "num_load_threads": False,
    "num_unload_threads": False,
    "flush_filesystem_caches": True,
    "tensorflow_session_parallelism": False,
    "tensorflow_session_config_file": False,
    "platform_config_file": False,
    "per_process_gpu_memory_fraction": False,
    "saved_model_tags": False,
    "grpc_max_threads": False,
    "num_request_iterations_for_warmup": False,
    "remove_unused_fields_from_bundle_metagraph": True,
    "prefer_tflite_model": True,
    "num_tflite_pools": False,
    "num_tflite_interpreters_per_pool": False,
    "xla_cpu_compilation_enabled": True,
    "xla_gpu_compilation_enabled": True,
    "enable_profiler": True,
    "thread_pool_factory_config_file": False,
    "mixed_precision": False,
    "skip_initialize_tpu": True,
    "enable_grpc_healthcheck_service": True,
    "enable_serialization_as_tensor_content": True,
}


def _looks_like_bool(text: str) -> bool:
    return text.strip().lower() in ("true", "false", "1", "0")


def normalize_argv(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with TF Serving's ignored flags dropped (one warning line on stderr naming them).

    An unknown ``--flag`` stops the program with exit status 2 and the closest known name::

        normalize_argv(p, ["--port=8500", "--xla_cpu_compilation_enabled=true"])   # -> ["--port=8500"] + warning
        normalize_argv(p, ["--rest_api_prot=8501"])   # exit 2: unknown flag --rest_api_prot; did you mean ...?
    """
    known = {opt[2:] for opt in parser._option_string_actions if opt.startswith("--")}
    out: list[str] = []
    ignored: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out.extend(args[i - 1 :])
            break
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, eq, _value = arg[2:].partition("=")
        if name in known:
            out.append(arg)
        elif name in IGNORED_FLAGS:
            ignored.append(f"--{name}")
            is_bool = IGNORED_FLAGS[name]
            has_value = not eq and i < len(args) and not args[i].startswith("--")
            if has_value and (not is_bool or _looks_like_bool(args[i])):
                i += 1  # its value, in the "--flag value" form
        else:
            candidates = sorted(known | set(IGNORED_FLAGS))
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
            hint = f"; did you mean --{close[0]}?" if close else "; see deepclf serve --help"
            parser.error(f"unknown flag --{name}{hint}")
    if ignored:
        names = ", ".join(dict.fromkeys(ignored))
        print(
            f"deepclf serve: warning: ignoring TF Serving flags that have no meaning for a LiteRT edge server: {names}",
            file=sys.stderr,
            flush=True,
        )
    return out


class ServeArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that applies ``normalize_argv`` first (TF Serving's ignored and unknown flags)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """``argparse``'s ``parse_known_args`` on the normalised argv (``Any``: argparse's overloads, unchanged)."""
        argv = normalize_argv(self, sys.argv[1:] if args is None else list(args))
        return super().parse_known_args(argv, namespace)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``deepclf`` parser."""
    p = subparsers.add_parser(
        "serve",
        help="serve models with TF Serving's REST and gRPC APIs over LiteRT (no TensorFlow)",
        description=(
            "Serve every numeric version folder under a model base path (as `deepclf convert` publishes it) with "
            "TF Serving's REST and gRPC APIs. New versions are picked up and swapped in without failing requests. "
            "Flags follow tensorflow_model_server's."
        ),
    )
    p.__class__ = ServeArgumentParser  # the subparser action calls its parse_known_args
    p.allow_abbrev = False  # TF Serving has no abbreviations; --port must not match --port_something
    add_arguments(p)
    p.set_defaults(func=run_serve)


def build_serve_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``deepclf serve`` flags on their own (for drivers that run ``serve_foreground`` themselves)."""
    parser = ServeArgumentParser(prog="deepclf serve", allow_abbrev=False)
    add_arguments(parser)
    return parser.parse_args(argv)


#: A TF Serving boolean: bare ``--flag`` is true, ``--flag=false`` / ``--flag 0`` set it explicitly.
_BOOL: dict[str, Any] = {"nargs": "?", "const": True, "type": _bool, "metavar": "BOOL"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``serve`` flags (tensorflow_model_server's names)."""
    d = ServerConfig.__dataclass_fields__
    p.add_argument("--model_name", default=None, help="model name in URLs and ModelSpecs (default: base folder name)")
    p.add_argument("--model_base_path", default=None, help="folder holding <version>/ folders")
    p.add_argument(
        "--model_config_file", default=None, help="TF Serving models.config (several models, version policies, labels)"
    )
    p.add_argument(
        "--host",
        default=None,
        help="address to listen on (default 127.0.0.1, this machine only; TF Serving listens on all interfaces, "
        "which --host=0.0.0.0 gives; the edge image's entrypoint passes it)",
    )
    p.add_argument("--port", type=_port, default=8500, help="gRPC port (default 8500; 0 = any free port; -1 = off)")
    p.add_argument(
        "--grpc_socket_path",
        default=None,
        help="also serve gRPC on this Unix socket (relative or absolute path; clients use unix:<path>)",
    )
    p.add_argument(
        "--grpc_channel_arguments",
        default="",
        help="gRPC server options as key=value,key=value (integers passed as integers), e.g. "
        "grpc.max_connection_age_ms=30000,grpc.keepalive_time_ms=10000",
    )
    p.add_argument(
        "--use_alts_credentials",
        **_BOOL,
        default=False,
        help="refused when true: ALTS works only on Google Cloud and is not offered here (use --ssl_config_file)",
    )
    p.add_argument(
        "--rest_api_port", type=_port, default=8501, help="REST port (default 8501; 0 = any free port; -1 = off)"
    )
    p.add_argument(
        "--format",
        type=variant_arg,
        choices=SERVE_FORMATS,
        default=DEFAULT_VARIANT,
        help="variant to serve: a TFLite variant (LiteRT) or savedmodel (needs the tf extra)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="inference worker threads, one LiteRT interpreter each (default: the CPUs left after one "
        f"interpreter's threads; {default_threads()} here)",
    )
    p.add_argument(
        "--interpreter_threads",
        type=int,
        default=None,
        help=f"XNNPACK threads per interpreter (default: the CPUs, up to 4; {default_interpreter_threads()} here)",
    )
    p.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="how often to look for new/removed versions (default 1; 0 = never)",
    )
    p.add_argument(
        "--enable_batching", **_BOOL, default=False, help="merge concurrent requests into batches (default false)"
    )
    p.add_argument(
        "--batching_parameters_file",
        default=None,
        help="TF Serving BatchingParameters text proto (max_batch_size, batch_timeout_micros, num_batch_threads, "
        "max_enqueued_batches, allowed_batch_sizes, pad_variable_length_inputs); needs --enable_batching",
    )
    p.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="re-read --model_config_file every N s (models added/removed, policies, labels); 0 = read once",
    )
    p.add_argument(
        "--enable_signature_method_name_check",
        **_BOOL,
        default=False,
        help="hold Predict/Classify/Regress to their signatures' method_name (default false; false serves TF2 "
        "models, whose signatures all say tensorflow/serving/predict, through Classify and Regress)",
    )
    p.add_argument(
        "--enable_model_warmup",
        **_BOOL,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests before a version becomes AVAILABLE (default true)",
    )
    p.add_argument(
        "--monitoring_config_file",
        default=None,
        help="TF Serving MonitoringConfig text proto: Prometheus metrics on the REST port at prometheus_config.path "
        "when enable is true, none when false (without the file they are at /monitoring/prometheus/metrics)",
    )
    p.add_argument(
        "--rest_api_timeout_in_ms",
        type=int,
        default=30000,
        help="REST requests running longer fail with DEADLINE_EXCEEDED (default 30000); an inference request that "
        "could not start within it (nor a gRPC call without a deadline) is refused at once, UNAVAILABLE / 503",
    )
    p.add_argument("--rest_api_num_threads", type=int, default=None, help="accepted; REST runs on one event loop here")
    p.add_argument(
        "--rest_api_enable_cors_support",
        **_BOOL,
        default=False,
        help="CORS headers on every REST answer under /v1/ (Access-Control-Allow-Origin: *, as TF Serving); "
        "OPTIONS preflights are answered either way (default false)",
    )
    p.add_argument(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="same as --interpreter_threads when > 0 (XNNPACK threads per interpreter)",
    )
    p.add_argument(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="same as --threads when > 0 (concurrent interpreters)",
    )
    p.add_argument(
        "--allow_version_labels_for_unavailable_models",
        **_BOOL,
        default=False,
        help="let labels in models.config name versions that are not loaded yet (default false)",
    )
    p.add_argument(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="retries of a version's first load after it fails, --load_retry_interval_micros apart (default 5, as "
        "TF Serving; 0: a broken version is reported at once); later polls retry it with backoff",
    )
    p.add_argument(
        "--load_retry_interval_micros",
        type=int,
        default=60_000_000,
        help="wait between load retries (default 60000000 = 1 min; negative: no wait)",
    )
    p.add_argument("--version", **_BOOL, default=False, help="print the version and exit")
    p.add_argument("--max_batch_size", type=int, default=d["max_batch_size"].default)
    p.add_argument("--batch_timeout_micros", type=int, default=d["batch_timeout_micros"].default)
    p.add_argument("--num_batch_threads", type=int, default=d["num_batch_threads"].default)
    p.add_argument("--max_enqueued_batches", type=int, default=d["max_enqueued_batches"].default)
    p.add_argument(
        "--max_body_bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest REST request body accepted (413 above; default %(default)s)",
    )
    p.add_argument(
        "--max_request_rows",
        type=int,
        default=None,
        help="most rows (batch items) in one request, checked before anything is decoded (400 above; default 32, "
        "or --max_batch_size with batching when larger)",
    )
    p.add_argument(
        "--max_request_bytes",
        type=int,
        default=d["max_request_bytes"].default,
        help="most decoded tensor bytes one request may make, all inputs and images together, checked before "
        "allocating (400 above; default %(default)s)",
    )
    p.add_argument(
        "--max_image_pixels",
        type=int,
        default=d["max_image_pixels"].default,
        help="most pixels in one encoded image, read from its header before decoding (400 above; default "
        "%(default)s = 4096x3072)",
    )
    p.add_argument(
        "--max_request_pixels",
        type=int,
        default=None,
        help="most pixels of all the encoded images in one request, from their headers (400 above; default 4 x "
        "--max_image_pixels)",
    )
    p.add_argument(
        "--max_in_flight",
        type=int,
        default=None,
        help="inference requests admitted at once (queued + running); beyond it UNAVAILABLE / 503 with "
        "Retry-After, 'queue full' (default 1024). Requests wait in the queue; one that could not start before its "
        "deadline (--rest_api_timeout_in_ms, or a gRPC call's own) is refused the same way",
    )
    p.add_argument(
        "--max_queued_bytes",
        type=int,
        default=None,
        help="request bytes of the admitted requests; beyond it UNAVAILABLE / 503 'queue full' (a lone request is "
        "always admitted; default 33554432 = 32 MiB)",
    )
    p.add_argument(
        "--grpc_max_message_bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="largest gRPC message sent or received (default %(default)s)",
    )
    p.add_argument(
        "--ssl_config_file",
        default=None,
        help="TF Serving SSLConfig text proto (server_key, server_cert, custom_ca: PEM text; "
        "client_verify) for gRPC over TLS",
    )
    p.add_argument("--ssl_cert", default=None, help="server certificate chain (PEM file): gRPC over TLS")
    p.add_argument("--ssl_key", default=None, help="the server certificate's private key (PEM file)")
    p.add_argument(
        "--ssl_client_ca",
        default=None,
        help="CA (PEM file) that signs client certificates: mutual TLS, clients without one are refused",
    )
    p.add_argument(
        "--rest_api_ssl",
        **_BOOL,
        default=False,
        help="serve REST over HTTPS with the same certificates (default: plain HTTP, as TF Serving)",
    )
    p.add_argument(
        "--grace_seconds",
        type=float,
        default=10.0,
        help="on SIGTERM, how long in-flight requests may take to finish (default 10)",
    )
    p.add_argument("--no_access_log", action="store_true", help="do not write one JSON line per request")
    p.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


#: Why ``--use_alts_credentials`` is refused (TF Serving would serve gRPC with ALTS credentials).
ALTS_REFUSED = (
    "--use_alts_credentials: ALTS (Google's Application Layer Transport Security) works only between workloads "
    "on Google Cloud, and gRPC's ALTS credentials cannot even be created elsewhere; deepclf serve does not offer "
    "it, and refuses to start rather than serve gRPC in plaintext. For an encrypted gRPC port use "
    "--ssl_config_file (TF Serving's SSLConfig) or --ssl_cert/--ssl_key"
)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ``ServerConfig`` the parsed flags describe (TF Serving's thread flags map onto deepclf's)."""
    if args.use_alts_credentials:
        if args.ssl_config_file:  # TF Serving's own check comes first (server.cc BuildAndStart)
            raise UsageError("Either use_alts_credentials must be false or ssl_config_file must be empty.")
        raise UsageError(ALTS_REFUSED)
    if args.tensorflow_intra_op_parallelism > 0:
        args.interpreter_threads = args.tensorflow_intra_op_parallelism
    if args.tensorflow_inter_op_parallelism > 0:
        args.threads = args.tensorflow_inter_op_parallelism
    default_host = args.host is None
    if default_host:
        args.host = "127.0.0.1"
    if args.port is not None and args.port != 0 and args.port == args.rest_api_port:
        print(
            f"deepclf serve: warning: --rest_api_port cannot be the gRPC port ({args.port}); REST is not served "
            "(as TF Serving: use a different port for the REST API)",
            file=sys.stderr,
            flush=True,
        )
        args.rest_api_port = None
    if args.monitoring_config_file is not None:
        from deepclf.serving.modelconfig import prometheus_metrics_path  # lazy: protobuf's text parser

        if not Path(args.monitoring_config_file).is_file():
            raise UsageError(f"--monitoring_config_file {args.monitoring_config_file}: no such file")
        prometheus_metrics_path(args.monitoring_config_file)  # a bad file is a usage error now, not at start()
    config = ServerConfig(
        batching_parameters_file=args.batching_parameters_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
        enable_model_warmup=args.enable_model_warmup,
        rest_api_timeout_ms=args.rest_api_timeout_in_ms,
        max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_micros=args.load_retry_interval_micros,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
        enable_signature_method_name_check=args.enable_signature_method_name_check,
        monitoring_config_file=args.monitoring_config_file,
        model_name=args.model_name,
        model_base_path=args.model_base_path,
        model_config_file=args.model_config_file,
        host=args.host,
        port=args.port,
        rest_api_port=args.rest_api_port,
        format=args.format,
        threads=args.threads if args.threads is not None else default_threads(),
        interpreter_threads=(
            args.interpreter_threads if args.interpreter_threads is not None else default_interpreter_threads()
        ),
        poll_seconds=args.file_system_poll_wait_seconds,
        enable_batching=args.enable_batching,
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        num_batch_threads=args.num_batch_threads,
        max_enqueued_batches=args.max_enqueued_batches,
        max_body_bytes=args.max_body_bytes,
        max_request_rows=args.max_request_rows,
        max_request_bytes=args.max_request_bytes,
        max_image_pixels=args.max_image_pixels,
        max_request_pixels=args.max_request_pixels,
        max_in_flight=args.max_in_flight,
        max_queued_bytes=args.max_queued_bytes,
        grpc_max_message_bytes=args.grpc_max_message_bytes,
        access_log=not args.no_access_log,
        ssl_config_file=args.ssl_config_file,
        ssl_cert=args.ssl_cert,
        ssl_key=args.ssl_key,
        ssl_client_ca=args.ssl_client_ca,
        rest_ssl=args.rest_api_ssl,
        rest_api_enable_cors_support=args.rest_api_enable_cors_support,
        startup_timeout=None,  # a base path that is not there yet is waited for, as TF Serving waits
        grpc_socket_path=args.grpc_socket_path or None,
        grpc_channel_arguments=parse_channel_arguments(args.grpc_channel_arguments),
    )
    if default_host:  # after the checks above: a refused command line says only what was wrong
        print(
            "deepclf serve: note: listening on 127.0.0.1 only (this machine); TF Serving listens on all interfaces: "
            "--host=0.0.0.0 does that",
            file=sys.stderr,
            flush=True,
        )
    return config


def setup_logging(level: str = "INFO", access_log: bool = True) -> None:
    """Server logs and the JSON access log (one line per request) on stderr.

    Access-log lines are written by a background thread (``logging.handlers.QueueListener``): a request only
    queues its line, and the write to stderr (a pipe or a file, at times slow) is off its path. Lines still queued
    at exit are written then (``atexit``), so a drained server's log is complete.
    """
    import atexit
    import queue
    from logging.handlers import QueueHandler, QueueListener

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name, lvl in (("deepclf.serving", level), ("deepclf.serving.access", "INFO" if access_log else "WARNING")):
        logger = logging.getLogger(name)
        logger.setLevel(lvl)
        if not logger.handlers:
            if name.endswith(".access"):
                lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
                listener = QueueListener(lines, handler)
                listener.start()
                atexit.register(listener.stop)
                logger.addHandler(QueueHandler(lines))
            else:
                logger.addHandler(handler)
        logger.propagate = False


class _StopWhileStarting(BaseException):
    """SIGTERM/SIGINT while the server is starting: not an ``Exception``, so no loader or poll catches it."""


def serve_foreground(config: ServerConfig, *, grace: float = 10.0) -> int:
    """Run an ``EdgeServer`` until SIGTERM/SIGINT, then drain for up to ``grace`` seconds; returns 0.

    The first stdout line names the addresses (``deepclf serve: gRPC on 127.0.0.1:8500, REST on http://...``),
    so a parent process that asked for port 0 can read the ports it got.
    """
    from deepclf.serving.server import EdgeServer

    stop = threading.Event()
    received: list[str] = []
    server = EdgeServer(config)

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()
        if not server.running:  # still starting (waiting for storage, retrying a load): stop now, as TF Serving
            raise _StopWhileStarting(received[-1])

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            server.start()
        except _StopWhileStarting as exc:
            print(f"deepclf serve: {exc} received while starting; stopped", file=sys.stderr, flush=True)
            return 0
        try:
            parts = []
            tls = (" (mutual TLS)" if server.tls.mutual else " (TLS)") if server.tls is not None else ""
            if server.grpc_port is not None:
                parts.append(f"gRPC{tls} on {server.grpc_target}")
            if server.rest_port is not None:
                parts.append(f"REST on {server.rest_url}")
            socket = f"; gRPC{tls} also on unix:{config.grpc_socket_path}" if config.grpc_socket_path else ""
            print(
                f"deepclf serve: {', '.join(parts)}{socket}; models {server.describe()}; "
                f"AVAILABLE in {server.started_in:.2f} s",
                flush=True,
            )
            while not stop.wait(0.5):
                pass
            print(
                f"deepclf serve: {received[0] if received else 'stop'} received; draining in-flight requests",
                file=sys.stderr,
                flush=True,
            )
        finally:
            server.stop(grace=grace)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    print("deepclf serve: stopped", file=sys.stderr, flush=True)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``deepclf serve``."""
    if args.version:
        from deepclf import __version__

        print(f"TensorFlow ModelServer: deepclf {__version__} (LiteRT edge server)\nTensorFlow Library: none")
        return 0
    config = config_from_args(args)
    setup_logging(args.log_level, access_log=not args.no_access_log)
    return serve_foreground(config, grace=args.grace_seconds)
