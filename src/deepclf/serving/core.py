"""The transport-neutral part of the server: TF Serving's APIs on decoded inputs, answered from the loaded models.

``ServingCore`` resolves the model version (latest, a number or a label), checks the signature, runs inference in
the worker pool (or through the micro-batcher) and returns outputs, results and TF Serving's metadata and status
messages. It never sees HTTP, JSON or gRPC objects: the REST translation (``rest_api``, run by ``rest.RestApp``)
and the gRPC translation (``grpc_api``, run by ``grpc_server``) decode requests into arrays and ``Input``
messages, call it, and encode what it returns. Both follow the same steps::

    with core.acquire("flowers", version=None, label=None, info=info) as served:   # NOT_FOUND if unknown
        key, spec = core.predict_signature(served, "", rest=False)
        outputs = core.wait(core.predict(served, key, inputs, info), info)           # a Future: pool or batcher
        key = core.inference_signature(served, "", CLASSIFY)
        result = core.wait(core.classify(served, key, core.examples_tensor(inp), info), info)

Why ``predict``/``classify`` return futures instead of running inline: the caller (the event loop, a gRPC thread)
waits without holding a pool thread, so a pool thread never waits for another pool task (no deadlock), and with
batching many requests can wait for one batch while the pool stays free. REST's unbatched Predict runs its whole
call in one pool task instead (``predict_now``): one wait in the pool's queue rather than three.

Errors are raised as ``deepclf.protocol`` ``ServingError``s (or package errors that map onto them);
``public_error`` turns anything else into a generic INTERNAL error whose details stay in the server log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson

from deepclf import protocol as P
from deepclf.manifest import MANIFEST_NAME
from deepclf.protocol.limits import RequestLimits
from deepclf.protocol.messages import ClassificationResult, RegressionResult, StringValue
from deepclf.serving import examples, signaturedefs
from deepclf.serving.batching import Batcher, Outputs, batch_key
from deepclf.serving.models import ModelManager, ServedVersion
from deepclf.serving.overload import Admission, Ticket
from deepclf.serving.signaturedefs import EXAMPLES_INPUT, signature_def_map
from deepclf.serving.tfmetrics import TFServingMetrics

log = logging.getLogger("deepclf.serving")

SIGNATURE_DEF = "signature_def"
#: deepclf extension of GetModelMetadata: the version's manifest.json (labels, input size), packed in an ``Any``
#: holding a ``google.protobuf.StringValue`` whose value is the JSON text. TF Serving refuses the field
#: (INVALID_ARGUMENT), so clients ask for it alone and fall back when refused.
DEEPCLF_MANIFEST = "deepclf_manifest"
METADATA_FIELDS = (SIGNATURE_DEF, DEEPCLF_MANIFEST)
STRING_VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.StringValue"

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass
class CallInfo:
    """What a transport needs for metrics and logs, filled in by the core as it resolves the request."""

    model: str = ""
    version: str = ""
    format: str = ""
    signature: str = ""
    rows: int | None = None
    #: When the caller stops waiting (``time.monotonic()``; gRPC deadline), or ``None``: work still queued then
    #: is dropped, never run.
    deadline: float | None = None
    #: The call's place in the admission queue (``deepclf.serving.overload``), when it went through admission.
    ticket: Ticket | None = None

    def fill(self, served: ServedVersion) -> None:
        self.model, self.version, self.format = served.model, str(served.version), served.format

    def begin(self) -> None:
        """The call's work starts on a worker: DEADLINE_EXCEEDED if it waited in a queue past its deadline, else
        its queue wait ends here (the first call counts; later ones do nothing)."""
        _refuse_if_past(self.deadline)
        if self.ticket is not None:
            self.ticket.begin()


def backend_info(served: ServedVersion) -> dict[str, str]:
    """Which backend and variant answer for a served version (the ``deepclf`` field of REST metadata):
    ``{"backend": "litert" | "tensorflow", "variant": "fp32" | ... | "savedmodel" | "generic", "runner": <format>}``."""
    fmt = str(served.format)
    backend = "litert" if fmt.startswith("tflite") else "tensorflow"
    if fmt.endswith("-generic"):
        variant = "generic"
    elif fmt.startswith("tflite-"):
        variant = fmt.removeprefix("tflite-")
    else:
        variant = fmt
    return {"backend": backend, "variant": variant, "runner": fmt}


def manifest_json(served: ServedVersion) -> str:
    """The manifest of a served deepclf model version as JSON text; INVALID_ARGUMENT for generic TFLite models."""
    manifest = getattr(served.runner, "manifest", None)
    if manifest is not None and hasattr(manifest, "to_dict"):
        return orjson.dumps(manifest.to_dict()).decode("utf-8")
    file = served.path / MANIFEST_NAME  # a runner_wrapper may hide the runner's manifest
    if file.is_file():
        try:
            return orjson.dumps(orjson.loads(file.read_bytes())).decode("utf-8")
        except (OSError, orjson.JSONDecodeError):
            pass
    raise P.InvalidInput(
        f"Metadata field {DEEPCLF_MANIFEST} is not available for model {served.model!r} version "
        f"{served.version}: it is not a deepclf model (no {MANIFEST_NAME})"
    )


def public_error(exc: BaseException, *, context: str = "") -> P.ServingError:
    """The error to send: ``ServingError``s and package errors as they are, anything else as a generic INTERNAL
    error (the traceback is logged here, never sent)."""
    err = P.from_exception(exc)
    if isinstance(err, P.Internal) and not isinstance(exc, P.ServingError):
        incident = uuid.uuid4().hex[:12]
        log.error("internal error %s%s", incident, f" ({context})" if context else "", exc_info=exc)
        return P.Internal(f"internal server error (incident {incident}); details are in the server log")
    return err


class ServingCore:
    """Answers Predict, Classify, Regress, GetModelMetadata and GetModelStatus for the models a ``ModelManager``
    serves, on decoded inputs (see the module docstring for the steps a transport takes)."""

    def __init__(
        self,
        manager: ModelManager,
        executor: Executor,
        *,
        batcher: Batcher | None = None,
        limits: RequestLimits | None = None,
        admission: Admission | None = None,
        tf_metrics: TFServingMetrics | None = None,
        method_name_check: bool = False,
    ) -> None:
        self.manager = manager
        #: ``--enable_signature_method_name_check``: signatures are held to their method names (spec 6.5, 7.2).
        self.method_name_check = method_name_check
        #: TF Serving's runtime latency and example counts, recorded where TF Serving records them.
        self.tf_metrics = tf_metrics
        self.executor = executor
        self.batcher = batcher
        #: What one request may allocate (``deepclf.protocol.limits``); checked before any array is made.
        self.limits = limits or RequestLimits()
        #: Admission of inference calls by memory and time (``deepclf.serving.overload``); ``None``: all admitted.
        self.admission = admission

    # -- versions and signatures -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def acquire(self, name: str, version: int | None, label: str | None, info: CallInfo) -> Iterator[ServedVersion]:
        """The version a request names (latest, a number or a label), held for the call (a hot swap waits for
        it); NOT_FOUND / FAILED_PRECONDITION in TF Serving's words when there is none. ``info`` names it."""
        info.model = name
        with self.manager.acquire(name, version, label) as served:
            info.fill(served)
            yield served

    @staticmethod
    def predict_signature(served: ServedVersion, name: str, *, rest: bool = False) -> tuple[str, Any]:
        """The signature key and spec a Predict names (``signaturedefs.predict_signature``: REST and gRPC refuse an
        unknown one in different words)."""
        return signaturedefs.predict_signature(served.signatures, name, rest=rest)

    def check_predict_method(self, served: ServedVersion, key: str) -> None:
        """With ``--enable_signature_method_name_check``: the signature's method name must be one Predict takes."""
        if self.method_name_check:
            signaturedefs.check_predict_method(served.runner, key)

    def inference_signature(self, served: ServedVersion, name: str, kind: str) -> str:
        """The signature key a Classify (``kind="classify"``) or Regress call uses, validated as TF Serving does
        (aliases ``inputs`` and ``classes``/``scores`` or ``outputs``; the method name with
        ``--enable_signature_method_name_check``)."""
        return signaturedefs.inference_signature(
            served.signatures, served.runner, name, kind, check_method=self.method_name_check
        )

    def examples_tensor(self, inp: Any) -> dict[str, np.ndarray]:
        """A Classify/Regress ``Input`` as the signature's input tensor, within the request budget."""
        return examples.examples_tensor(inp, self.limits.budget())

    # -- inference ---------------------------------------------------------------------------------------------

    def predict(
        self, served: ServedVersion, key: str, inputs: dict[str, np.ndarray], info: CallInfo
    ) -> Future[Outputs]:
        """Predict on decoded inputs: the outputs, as a future (pool or batcher)."""
        return self.infer(served, key, inputs, info, "Predict")

    def predict_now(self, served: ServedVersion, key: str, inputs: dict[str, np.ndarray], info: CallInfo) -> Outputs:
        """Predict in the calling thread (a pool thread that already holds the call: REST's one-task path)."""
        info.begin()
        t0 = time.perf_counter()
        outputs: Outputs = served.runner.run(inputs, key)
        if self.tf_metrics is not None:
            self.tf_metrics.record_runtime(served.model, "Predict", time.perf_counter() - t0)
        return outputs

    def classify(
        self, served: ServedVersion, key: str, inputs: dict[str, np.ndarray], info: CallInfo
    ) -> Future[ClassificationResult]:
        """Classify on the examples tensor (``examples_tensor``): the ``ClassificationResult``, as a future."""
        n = len(inputs[EXAMPLES_INPUT])

        def result(outputs: Outputs) -> ClassificationResult:
            out = ClassificationResult()
            examples.fill_classification(outputs, n, out)
            return out

        return _then(self.infer(served, key, inputs, info, "Classify"), result)

    def regress(
        self, served: ServedVersion, key: str, inputs: dict[str, np.ndarray], info: CallInfo
    ) -> Future[RegressionResult]:
        """Regress on the examples tensor: the ``RegressionResult``, as a future."""
        n = len(inputs[EXAMPLES_INPUT])

        def result(outputs: Outputs) -> RegressionResult:
            out = RegressionResult()
            examples.fill_regression(outputs, n, out)
            return out

        return _then(self.infer(served, key, inputs, info, "Regress"), result)

    def infer(
        self,
        served: ServedVersion,
        signature: str,
        inputs: dict[str, np.ndarray],
        info: CallInfo | None = None,
        api: str | None = None,
    ) -> Future[Outputs]:
        """Start inference: the batcher when it can merge the request, else one call in the worker pool.

        ``info``: the call's deadline (``time.monotonic()``): a call still queued when it passes is dropped, not
        run (its caller has stopped waiting; cancelling the future drops it too), and its admission ticket, whose
        queue wait ends when the work starts. ``api`` (``Predict``, ``Classify``, ``Regress``): a run that
        succeeds is TF Serving's ``runtime_latency`` of that API (the run as the session's caller sees it: queue
        and batch included, as a batching session's ``Run``).
        """
        runner = served.runner
        run = runner.run if info is None else _starting(runner.run, info)
        future: Future[Outputs] | None = None
        if self.batcher is not None:
            key = batch_key(
                (served.model, served.version, id(runner), signature),
                inputs,
                pad_variable_length=self.batcher.pad_variable_length_inputs,
            )
            if key is not None:
                on_start = info.ticket.begin if info is not None and info.ticket is not None else None
                future = self.batcher.submit(key, run, inputs, signature, on_start=on_start)
        if future is None:
            future = self.executor.submit(run, inputs, signature)
        tf = self.tf_metrics
        if api is not None and tf is not None:
            t0, model = time.perf_counter(), served.model

            def record(done: Future[Outputs]) -> None:
                if not done.cancelled() and done.exception() is None:
                    tf.record_runtime(model, api, time.perf_counter() - t0)

            future.add_done_callback(record)
        return future

    @staticmethod
    def wait(future: Future[_T], info: CallInfo) -> _T:
        """The outputs of ``future``, waiting no longer than ``info.deadline`` (then it is cancelled:
        DEADLINE_EXCEEDED, and a call still queued never runs)."""
        if info.deadline is None:
            return future.result()
        try:
            # clamped: a far-off deadline must not overflow the platform's wait
            return future.result(timeout=min(max(info.deadline - time.monotonic(), 0.0), threading.TIMEOUT_MAX))
        except FutureTimeout:
            future.cancel()
            raise P.DeadlineExceeded(
                "Deadline Exceeded: the call's deadline passed before inference finished"
            ) from None

    # -- metadata and status ---------------------------------------------------------------------------------

    def metadata(
        self, name: str, version: int | None, label: str | None, fields: list[str], info: CallInfo
    ) -> P.GetModelMetadataResponse:
        """``GetModelMetadata``: the version's ``SignatureDefMap``, packed as TF Serving packs it, and (deepclf
        extension, field ``deepclf_manifest``) its manifest JSON in a packed ``StringValue``."""
        if not fields:
            raise P.InvalidInput(
                "GetModelMetadataRequest must specify at least one metadata_field "
                f"(supported: {', '.join(METADATA_FIELDS)})"
            )
        for f in fields:
            if f not in METADATA_FIELDS:
                raise P.InvalidInput(f"Metadata field {f} is not supported; supported: {', '.join(METADATA_FIELDS)}")
        with self.acquire(name, version, label, info) as served:
            response = P.GetModelMetadataResponse()
            fill_model_spec(response.model_spec, served)
            if DEEPCLF_MANIFEST in fields:
                entry = response.metadata[DEEPCLF_MANIFEST]
                entry.type_url = STRING_VALUE_TYPE_URL
                entry.value = StringValue(value=manifest_json(served)).SerializeToString()
            if SIGNATURE_DEF in fields:
                P.pack_signature_defs(response, signature_def_map(served.signatures, served.runner))
            return response

    def status(self, name: str, version: int | None, label: str | None, info: CallInfo) -> P.GetModelStatusResponse:
        """``GetModelStatus``: every version the server knows of (or the one asked for) and its state."""
        statuses = self.manager.statuses(name, version, label)
        info.model = name
        if version is not None or label is not None:
            info.version = str(statuses[0].version)
        response = P.GetModelStatusResponse()
        for st in statuses:
            entry = response.model_version_status.add(version=st.version, state=st.state)
            entry.status.error_code = int(st.error_code)
            entry.status.error_message = st.error_message
        return response


def _refuse_if_past(deadline: float | None) -> None:
    """DEADLINE_EXCEEDED once ``deadline`` (``time.monotonic()``) has passed: the work waited in a queue that long."""
    if deadline is not None and time.monotonic() > deadline:
        raise P.DeadlineExceeded("Deadline Exceeded: the request waited in the queue past its deadline")


def _starting(run: Callable[..., Outputs], info: CallInfo) -> Callable[..., Outputs]:
    """``run``, starting the call's work first (``CallInfo.begin``: refused once its deadline has passed)."""

    def guarded(inputs: Mapping[str, np.ndarray], signature: str) -> Outputs:
        info.begin()
        return run(inputs, signature)

    return guarded


def fill_model_spec(target: P.ModelSpec, served: ServedVersion, signature: str = "") -> None:
    """The ``model_spec`` of a response: the model, the version that answered, the signature it ran."""
    target.name = served.model
    target.version.value = served.version
    if signature:
        target.signature_name = signature


def _then(future: Future[_T], fn: Callable[[_T], _R]) -> Future[_R]:
    """A future of ``fn(result)``: ``fn`` runs in the thread that completes ``future``; an exception (of the call or
    of ``fn``) is the new future's; cancelling the new future cancels ``future`` (a call still queued never runs)."""
    out: Future[_R] = Future()

    def done(f: Future[_T]) -> None:
        if f.cancelled():
            out.cancel()
            return
        if not out.set_running_or_notify_cancel():
            return
        try:
            out.set_result(fn(f.result()))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the result
            out.set_exception(exc)

    future.add_done_callback(done)
    out.add_done_callback(lambda o: future.cancel() if o.cancelled() else None)
    return out
