"""``EdgeServer``: TF Serving's REST and gRPC APIs over LiteRT in one process, started and stopped from Python.

::

    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(model_name="flowers", model_base_path="models/flowers", port=0, rest_api_port=0,
                       format="fp32", threads=2)
    with EdgeServer(cfg) as srv:             # returns once every model is AVAILABLE
        srv.rest_url                         # "http://127.0.0.1:54321"
        srv.grpc_target                      # "127.0.0.1:54322"
    # leaving the block = srv.stop(grace=5.0): stop accepting, drain in-flight requests, unload

Inside: a ``ModelManager`` (versions, polling, hot swaps), a worker pool (LiteRT interpreters lent per call),
an optional ``Batcher``, the Starlette app on uvicorn (its own thread and event loop) and a ``grpc.server``.
``deepclf serve`` runs the same thing in the foreground until SIGTERM/SIGINT.

Nothing here imports TensorFlow; only ``format="savedmodel"`` does, through ``deepclf.runtime``.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deepclf.errors import DeepclfError, ModelFormatError, UsageError
from deepclf.manifest import MANIFEST_NAME
from deepclf.serving.batching import Batcher
from deepclf.serving.config import ServerConfig, bracket_host
from deepclf.serving.core import ServingCore
from deepclf.serving.metrics import ServerMetrics
from deepclf.serving.models import ModelManager
from deepclf.serving.modelspec import ModelConfig
from deepclf.variants import DEFAULT_VARIANT, TFLITE_FILES

log = logging.getLogger("deepclf.serving")


def load_version(path: Path, config: ServerConfig) -> Any:
    """Load one version folder as the server's ``format`` asks (and wrap it with ``runner_wrapper``).

    A folder with a ``manifest.json`` is a deepclf model (``deepclf.runtime.load_runner``: the variant's
    ``.tflite``, or the SavedModel for ``savedmodel``). A folder without one is a generic TFLite model served
    through its own signatures: the variant's file name when present, else ``model.tflite``. A folder with a
    ``saved_model.pb``, no manifest and no ``.tflite`` (or ``format="savedmodel"``) is any SavedModel, served with
    all its signatures by ``GenericSavedModelRunner`` (needs TensorFlow; a clear error without it).
    """
    from deepclf.runtime import load_runner  # keeps `import deepclf.serving` light

    runner: Any  # a Runner, a GenericLiteRTRunner (its own signatures), or what runner_wrapper makes of them
    if (path / MANIFEST_NAME).is_file():
        if config.format == "savedmodel":
            runner = load_runner(path, format="savedmodel")
        else:
            runner = load_runner(path, variant=config.format, num_threads=config.interpreter_threads)
    elif (path / "saved_model.pb").is_file() and (config.format == "savedmodel" or not list(path.glob("*.tflite"))):
        # A SavedModel without a deepclf manifest (TF Serving's models): every signature, as TF Serving serves it.
        from deepclf.runtime.savedmodel_generic import GenericSavedModelRunner  # TF, lazily (clear error without)

        runner = GenericSavedModelRunner(path)
    else:
        from deepclf.runtime.generic import GenericLiteRTRunner

        fp32_file = TFLITE_FILES[DEFAULT_VARIANT]  # "savedmodel" on a generic model: its plain .tflite
        candidates = [path / TFLITE_FILES.get(config.format, fp32_file), path / fp32_file]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise ModelFormatError(
                f"{path} has no {MANIFEST_NAME} and no {candidates[0].name} or model.tflite; a generic model "
                "needs a .tflite file (deepclf models carry a manifest)"
            )
        runner = GenericLiteRTRunner(file, num_threads=config.interpreter_threads)
    if hasattr(runner, "image_budget"):  # deepclf models decode client-sent images: headers checked first
        runner.image_budget = config.image_budget()
    if config.enable_batching and config.allowed_batch_sizes and hasattr(runner, "invoke_sizes"):
        # LiteRT interpreters prepared for exactly the padded batch sizes the batcher forms (as TF Serving does).
        runner.invoke_sizes = tuple(sorted({1, *config.allowed_batch_sizes}))
    if config.runner_wrapper is not None:
        runner = config.runner_wrapper(runner)
    return runner


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and accepted
    # connections inherit it; without it small responses wait ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot bind the REST port {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class EdgeServer:
    """One edge server: REST (uvicorn) and gRPC in background threads of this process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics(
            known_models=lambda: self.manager.known_versions() if self.manager is not None else {}
        )
        self.manager: ModelManager | None = None
        self.core: ServingCore | None = None
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self.started_in: float | None = None  # seconds from start() to every model AVAILABLE
        self._executor: ThreadPoolExecutor | None = None
        self._batcher: Batcher | None = None
        self._grpc: Any = None
        self._health: Any = None
        self._uvicorn: Any = None
        self._failed_loads: set[Path] = set()  # versions whose first load failed (see _load_and_warm_up)
        self._rest_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._state_lock = threading.Lock()
        self._running = False
        self.tls: Any = None  # deepclf.serving.tls.TlsMaterial when TLS is configured
        self.warmup_requests = 0  # warmup requests replayed before versions became AVAILABLE
        self.config_reloads = 0  # models.config reloads applied (poll or HandleReloadConfigRequest)
        self._config_text: str | None = None  # the models.config text last applied
        self._config_stop = threading.Event()
        self._config_thread: threading.Thread | None = None

    # -- addresses -------------------------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        """``http://host:port`` of the REST API (``https://`` with ``rest_ssl``)."""
        if self.rest_port is None:
            raise UsageError("the REST API is not running (rest_api_port=None, or the server is not started)")
        return f"{'https' if self.config.rest_ssl else 'http'}://{bracket_host(self.config.host)}:{self.rest_port}"

    @property
    def grpc_tls(self) -> bool:
        """Whether gRPC is served over TLS (clients use ``grpcs://`` + ``grpc_target``)."""
        return self.config.tls

    @property
    def grpc_target(self) -> str:
        """``host:port`` of the gRPC API (what ``grpc.insecure_channel``, or ``secure_channel`` with TLS, takes)."""
        if self.grpc_port is None:
            raise UsageError("the gRPC API is not running (port=None, or the server is not started)")
        return f"{bracket_host(self.config.host)}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.rest_url}/monitoring/prometheus/metrics"

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> EdgeServer:
        """Load every model, start both APIs, and return once everything is AVAILABLE (raises otherwise)."""
        with self._state_lock:
            if self._running:
                raise UsageError("this EdgeServer is already running")
            t0 = time.perf_counter()
            try:
                self._start()
            except BaseException:
                self._shutdown(grace=0.0)
                raise
            self._running = True
            self.started_in = time.perf_counter() - t0
        return self

    def _start(self) -> None:
        cfg = self.config
        models = cfg.models()
        if cfg.tls:
            from deepclf.serving.tls import tls_material

            self.tls = tls_material(cfg)
            self.tls.ssl_context()  # validates the key/certificate pair now, not at the first handshake
        self._executor = ThreadPoolExecutor(max_workers=cfg.threads, thread_name_prefix="deepclf-infer")
        if cfg.enable_batching:
            self._batcher = Batcher(
                max_batch_size=cfg.max_batch_size,
                timeout_s=cfg.batch_timeout_micros / 1e6,
                num_threads=cfg.num_batch_threads,
                max_enqueued_batches=cfg.max_enqueued_batches,
                allowed_batch_sizes=cfg.allowed_batch_sizes,
                pad_variable_length_inputs=cfg.pad_variable_length_inputs,
                on_batch=self.metrics.batch_size.observe,
            )
        self.manager = ModelManager(
            models,
            loader=self._load_and_warm_up,
            poll_seconds=cfg.poll_seconds,
            on_change=self._on_models_changed,
        )
        # The first config's labels, checked as TF Serving checks them: before anything loads (so they need
        # --allow_version_labels_for_unavailable_models).
        self.manager.check_labels(models, allow_unavailable=cfg.allow_version_labels_for_unavailable_models)
        self.manager.load_initial(wait_seconds=cfg.startup_timeout)
        admission = cfg.admission(on_wait=self.metrics.queue_wait.observe)
        self.core = ServingCore(
            self.manager,
            self._executor,
            batcher=self._batcher,
            limits=cfg.request_limits(),
            admission=admission,
            tf_metrics=self.metrics.tf,
            method_name_check=cfg.enable_signature_method_name_check,
        )
        self.metrics.track_admission(admission)

        if cfg.port is not None or cfg.grpc_socket_path:
            from deepclf.serving.grpc_server import create_grpc_server

            grpc_workers = cfg.grpc_workers
            self._grpc, self.grpc_port, self._health = create_grpc_server(
                self.core,
                self.metrics,
                host=cfg.host,
                port=cfg.port,
                socket_path=cfg.grpc_socket_path,
                channel_arguments=cfg.grpc_channel_arguments,
                workers=grpc_workers,
                max_concurrent_rpcs=4 * grpc_workers + 128,
                max_message_bytes=cfg.grpc_max_message_bytes,
                default_deadline_s=cfg.rest_api_timeout_ms / 1000 if cfg.rest_api_timeout_ms > 0 else None,
                access_log=cfg.access_log,
                credentials=self.tls.grpc_credentials() if self.tls is not None else None,
            )
            self._grpc.add_generic_rpc_handlers([self._reload_config_handler()])
        if cfg.rest_api_port is not None:
            self._start_rest()
        if self._grpc is not None:
            from deepclf.serving.grpc_server import set_serving

            self._grpc.start()
            set_serving(self._health, True)
        self.manager.start()
        if cfg.model_config_file and not cfg.model_configs:
            self._config_text = Path(cfg.model_config_file).read_text()
            if cfg.config_poll_seconds > 0:
                self._config_thread = threading.Thread(
                    target=self._config_poll_loop, name="deepclf-config-poll", daemon=True
                )
                self._config_thread.start()
        self._on_models_changed()
        # Everything loaded so far (modules, models, interpreters) lives as long as the server: move it out of the
        # cyclic collector's generations, so that the full collections that request garbage triggers scan only
        # request objects (a full collection that walks every module's objects is a latency spike of tens of ms).
        gc.freeze()
        log.info("edge server AVAILABLE: %s", self.describe())

    def _start_rest(self) -> None:
        import uvicorn

        from deepclf.serving.http_protocol import http_protocol
        from deepclf.serving.modelconfig import prometheus_metrics_path
        from deepclf.serving.rest import create_app

        cfg = self.config
        assert self.core is not None, "start() makes the core before it starts the transports"
        admitted = self.core.admission.max_in_flight if self.core.admission is not None else 0
        app = create_app(
            self.core,
            self.metrics,
            ready=self.ready,
            max_body_bytes=cfg.max_body_bytes,
            access_log=cfg.access_log,
            describe=self.describe,
            timeout_ms=cfg.rest_api_timeout_ms,
            metrics_path=prometheus_metrics_path(cfg.monitoring_config_file),
            cors=cfg.rest_api_enable_cors_support,
        )
        sock = _bind(cfg.host, cfg.rest_api_port or 0)
        self.rest_port = sock.getsockname()[1]
        config_class: type[uvicorn.Config] = uvicorn.Config
        if cfg.rest_ssl:
            context = self.tls.ssl_context()

            class _SSLConfig(uvicorn.Config):  # our SSLContext (uvicorn's options need files)
                def load(self) -> None:
                    super().load()
                    self.ssl = context

            config_class = _SSLConfig

        ucfg = config_class(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=30,
            # uvicorn answers 503 itself beyond this many connections + tasks: a backstop against connection
            # floods, set above admission's bound so that health checks and status calls still get through.
            limit_concurrency=admitted + 1024,
            # httptools with named 400s where installed ([edge]); uvicorn's "auto" loop is uvloop where installed
            http=http_protocol(),
        )
        self._uvicorn = uvicorn.Server(ucfg)
        self._rest_thread = threading.Thread(
            target=self._uvicorn.run, kwargs={"sockets": [sock]}, name="deepclf-rest", daemon=True
        )
        self._rest_thread.start()
        deadline = time.monotonic() + 30.0
        while not self._uvicorn.started:
            if not self._rest_thread.is_alive() or time.monotonic() > deadline:
                raise DeepclfError(f"the REST server did not start on {cfg.host}:{self.rest_port}")
            time.sleep(0.01)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting requests, let in-flight ones finish (up to ``grace`` s), unload the models. Idempotent."""
        with self._state_lock:
            if not self._running:
                return
            self._running = False
            self._shutdown(grace)

    def _load_and_warm_up(self, path: Path) -> Any:
        """``load_version``, then (``enable_model_warmup``) the version's warmup requests, before it is AVAILABLE.

        A failing warmup request fails the load (the runner is closed, the error is the version's status). A failed
        load is retried ``max_num_load_retries`` times, ``load_retry_interval_micros`` apart (TF Serving's flags).
        """
        cfg = self.config
        # TF Serving's in-place retries apply to a version's first load; after that, the model manager retries
        # a failed version with backoff on later polls, without holding the poll for load_retry_interval.
        retries = 0 if path in self._failed_loads else cfg.max_num_load_retries
        for attempt in range(retries + 1):
            try:
                runner = self._load_once(path)
                self._failed_loads.discard(path)
                return runner
            except Exception as exc:
                if attempt >= retries or self._config_stop.is_set():
                    self._failed_loads.add(path)
                    raise
                wait = max(cfg.load_retry_interval_micros, 0) / 1e6
                log.warning(
                    "loading %s failed (%s); retry %d of %d in %.1f s",
                    path,
                    " ".join(str(exc).split()),
                    attempt + 1,
                    retries,
                    wait,
                )
                if self._config_stop.wait(wait):
                    raise
        raise AssertionError("unreachable")  # the loop returns or raises

    def _load_once(self, path: Path) -> Any:
        """One load attempt (TF Serving's ``load_attempt_count``/``load_latency``), then the warmup (its
        ``model_warmup_latency``/``model_warmup_records_read``, when the version has a warmup file)."""
        tf = self.metrics.tf
        t0 = time.perf_counter()
        try:
            runner = load_version(path, self.config)
        except BaseException:
            tf.record_load(str(path), False, 0.0)
            raise
        tf.record_load(str(path), True, time.perf_counter() - t0)
        if not self.config.enable_model_warmup:
            return runner
        from deepclf.serving.warmup import WARMUP_FILE, run_warmup

        has_file = (path / WARMUP_FILE).is_file()
        t0 = time.perf_counter()
        read = [0]
        try:
            n = run_warmup(path, runner, model=path.parent.name, version=path.name, records_read=read)
        except BaseException as exc:
            if has_file:
                from deepclf.protocol.errors import from_exception

                err = from_exception(exc)
                tf.record_warmup(str(path), f"{err.code.name}: {err.message}", read[0], time.perf_counter() - t0)
            close = getattr(runner, "close", None)
            if callable(close):
                close()
            raise
        if has_file:
            tf.record_warmup(str(path), "OK", read[0], time.perf_counter() - t0)
        self.warmup_requests += n  # loads run one at a time (the manager's scan lock)
        return runner

    def reload_config(self, models: Sequence[ModelConfig] | None = None) -> bool:
        """Apply a new models list (``None``: re-read ``--model_config_file``); True if something changed.

        Models added are loaded, removed ones unloaded after their in-flight requests, policies and labels updated
        (``ModelManager.reconfigure``). An invalid config (syntax, duplicate names, labels naming versions that
        are not available) raises ``UsageError`` and the running config stays::

            server.reload_config()                                   # after editing models.config
            server.reload_config([ModelConfig("a", "models/a")])     # what HandleReloadConfigRequest does
        """
        if self.manager is None:
            raise UsageError("the server is not running")
        cfg = self.config
        if models is None:
            if not cfg.model_config_file:
                raise UsageError("no --model_config_file to reload")
            from deepclf.serving.modelconfig import load_model_config_file

            text = Path(cfg.model_config_file).read_text()
            if text == self._config_text:
                return False
            try:
                models = load_model_config_file(cfg.model_config_file)
            finally:
                self._config_text = text  # a bad file is reported once, not on every poll
        self.manager.check_labels(models, allow_unavailable=cfg.allow_version_labels_for_unavailable_models)
        self.manager.reconfigure(models)
        self.config_reloads += 1
        self._on_models_changed()
        return True

    def _reload_config_handler(self) -> Any:
        """gRPC ``ModelService.HandleReloadConfigRequest``: the request's ``ModelServerConfig`` replaces the running
        models as a reloaded ``models.config`` does (``reload_config``); an invalid one is INVALID_ARGUMENT and the
        running config stays. Served beside the other ModelService methods (same service name)."""
        import grpc

        from deepclf import protocol as P
        from deepclf.serving.modelconfig import model_configs_from_message, private_message_class

        request_cls = private_message_class("tensorflow.serving.ReloadConfigRequest")
        response_cls = private_message_class("tensorflow.serving.ReloadConfigResponse")

        def handle(data: bytes, context: grpc.ServicerContext) -> bytes:
            request: Any = request_cls()
            try:
                request.ParseFromString(data)
                if request.config.WhichOneof("config") != "model_config_list":
                    raise UsageError("ReloadConfigRequest.config must hold a model_config_list")
                self.reload_config(model_configs_from_message(request.config))
            except Exception as exc:  # noqa: BLE001 - any reason the config cannot be applied is the caller's answer
                message = " ".join(str(exc).split())
                log.error("HandleReloadConfigRequest not applied, keeping the running config: %s", message)
                # TF Serving answers ReloadConfig's own status (a label: FAILED_PRECONDITION); a bad config is
                # INVALID_ARGUMENT
                code = P.grpc_code_for(exc) if isinstance(exc, P.ServingError) else grpc.StatusCode.INVALID_ARGUMENT
                context.abort(code, message)
            response: Any = response_cls()
            response.status.error_code = 0
            return bytes(response.SerializeToString())

        return grpc.method_handlers_generic_handler(
            "tensorflow.serving.ModelService",
            {"HandleReloadConfigRequest": grpc.unary_unary_rpc_method_handler(handle)},
        )

    def _config_poll_loop(self) -> None:
        period = self.config.config_poll_seconds
        while not self._config_stop.wait(period):
            try:
                self.reload_config()
            except Exception as exc:  # noqa: BLE001 - a bad config is logged; the running config stays
                log.error(
                    "models.config %s not applied, keeping the running config: %s",
                    self.config.model_config_file,
                    " ".join(str(exc).split()),
                )

    def _shutdown(self, grace: float) -> None:
        self._config_stop.set()
        if self._config_thread is not None:
            self._config_thread.join(5.0)
        if self._health is not None:
            from deepclf.serving.grpc_server import set_serving

            set_serving(self._health, False)
        stoppers = []
        if self._uvicorn is not None:
            self._uvicorn.config.timeout_graceful_shutdown = max(grace, 0.1)
            self._uvicorn.should_exit = True
        if self._grpc is not None:
            stoppers.append(self._grpc.stop(grace))
        if self._rest_thread is not None:
            self._rest_thread.join(grace + 5.0)
        for event in stoppers:
            event.wait(grace + 5.0)
        if self._batcher is not None:
            self._batcher.close()
        if self.manager is not None:
            self.manager.close(timeout=max(grace, 0.1))
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=False)
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped (``stop`` from another thread); True if it has."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> EdgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state -----------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from the end of ``start()`` (everything AVAILABLE, both APIs up) until ``stop()``."""
        return self._running

    def ready(self) -> bool:
        """True while running and every model has an AVAILABLE version (``/readyz``)."""
        return self._running and self.manager is not None and self.manager.ready()

    def describe(self) -> dict[str, Any]:
        """Loaded versions and formats per model: ``{"flowers": {"1": "tflite-fp32"}}``."""
        if self.manager is None:
            return {}
        return {name: {str(v): fmt for v, fmt in sorted(vs.items())} for name, vs in self.manager.formats().items()}

    def _on_models_changed(self) -> None:
        if self.manager is None:
            return
        for name, versions in self.manager.summary().items():
            self.metrics.available.labels(name).set(len(versions))
