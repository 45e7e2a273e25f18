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
import logging
import signal
import sys
import threading

from deepclf.serving.config import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    SERVE_FORMATS,
    ServerConfig,
)
from deepclf.variants import DEFAULT_VARIANT, variant_arg


def _port(text: str) -> int | None:
    value = int(text)
    return None if value < 0 else value


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
    add_arguments(p)
    p.set_defaults(func=run_serve)


def build_serve_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``deepclf serve`` flags on their own (for drivers that run ``serve_foreground`` themselves)."""
    parser = argparse.ArgumentParser(prog="deepclf serve")
    add_arguments(parser)
    return parser.parse_args(argv)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``serve`` flags (tensorflow_model_server's names)."""
    d = ServerConfig.__dataclass_fields__
    p.add_argument("--model_name", default=None, help="model name in URLs and ModelSpecs (default: base folder name)")
    p.add_argument("--model_base_path", default=None, help="folder holding <version>/ folders")
    p.add_argument(
        "--model_config_file", default=None, help="TF Serving models.config (several models, version policies, labels)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=_port, default=8500, help="gRPC port (default 8500; 0 = any free port; -1 = off)")
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
        default=d["threads"].default,
        help="inference worker threads, one LiteRT interpreter each (default %(default)s)",
    )
    p.add_argument("--interpreter_threads", type=int, default=1, help="XNNPACK threads per interpreter (default 1)")
    p.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="how often to look for new/removed versions (default 1; 0 = never)",
    )
    p.add_argument("--enable_batching", action="store_true", help="merge concurrent requests into batches")
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
        action="store_true",
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


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ``ServerConfig`` the parsed flags describe."""
    return ServerConfig(
        model_name=args.model_name,
        model_base_path=args.model_base_path,
        model_config_file=args.model_config_file,
        host=args.host,
        port=args.port,
        rest_api_port=args.rest_api_port,
        format=args.format,
        threads=args.threads,
        interpreter_threads=args.interpreter_threads,
        poll_seconds=args.file_system_poll_wait_seconds,
        enable_batching=args.enable_batching,
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        num_batch_threads=args.num_batch_threads,
        max_enqueued_batches=args.max_enqueued_batches,
        max_body_bytes=args.max_body_bytes,
        grpc_max_message_bytes=args.grpc_max_message_bytes,
        access_log=not args.no_access_log,
        ssl_config_file=args.ssl_config_file,
        ssl_cert=args.ssl_cert,
        ssl_key=args.ssl_key,
        ssl_client_ca=args.ssl_client_ca,
        rest_ssl=args.rest_api_ssl,
    )


def setup_logging(level: str = "INFO", access_log: bool = True) -> None:
    """Server logs and the JSON access log (one line per request) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name, lvl in (("deepclf.serving", level), ("deepclf.serving.access", "INFO" if access_log else "WARNING")):
        logger = logging.getLogger(name)
        logger.setLevel(lvl)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.propagate = False


def serve_foreground(config: ServerConfig, *, grace: float = 10.0) -> int:
    """Run an ``EdgeServer`` until SIGTERM/SIGINT, then drain for up to ``grace`` seconds; returns 0.

    The first stdout line names the addresses (``deepclf serve: gRPC on 127.0.0.1:8500, REST on http://...``),
    so a parent process that asked for port 0 can read the ports it got.
    """
    from deepclf.serving.server import EdgeServer

    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = EdgeServer(config).start()
        try:
            parts = []
            if server.grpc_port is not None:
                tls = (" (mutual TLS)" if server.tls.mutual else " (TLS)") if server.tls is not None else ""
                parts.append(f"gRPC{tls} on {server.grpc_target}")
            if server.rest_port is not None:
                parts.append(f"REST on {server.rest_url}")
            print(
                f"deepclf serve: {', '.join(parts)}; models {server.describe()}; "
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
    config = config_from_args(args)
    setup_logging(args.log_level, access_log=not args.no_access_log)
    return serve_foreground(config, grace=args.grace_seconds)
