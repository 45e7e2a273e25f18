"""The transport-independent part of the server: requests in TF Serving's terms, answered from the loaded models.

REST and gRPC both call ``ServingCore``; it resolves the model version (latest, a number or a label), checks the
signature, runs inference in the worker pool (or through the micro-batcher) and builds TF Serving's responses
with ``deepclf.protocol``. It never sees HTTP or gRPC objects, only messages, bytes and arrays::

    core = ServingCore(manager, executor, batcher=None)
    info = CallInfo()
    with manager.acquire("flowers") as served:                   # REST (rest.py awaits each step)
        key, req = core.decode_rest(served, body, info)          # in the worker pool
        outputs = core.infer(served, key, req.inputs, info).result()   # a Future: pool or batcher
    response = core.grpc_predict(request, info)                  # gRPC, from a gRPC thread; PredictResponse

Why ``infer`` returns a future instead of running inline: the caller (the event loop, a gRPC thread) waits for
it without holding a pool thread, so a pool thread never waits for another pool task (no deadlock), and with
batching many requests can wait for one batch while the pool stays free.

Errors are raised as ``deepclf.protocol`` ``ServingError``s (or package errors that map onto them);
``public_error`` turns anything else into a generic INTERNAL error whose details stay in the server log.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from deepclf import protocol as P
from deepclf.manifest import MANIFEST_NAME, SIGNATURE_FLOAT
from deepclf.protocol import rest as R
from deepclf.protocol.inference import serialize_input
from deepclf.protocol.limits import RequestBudget, RequestLimits
from deepclf.protocol.messages import (
    ClassificationResponse,
    MultiInferenceResponse,
    RegressionResponse,
    StringValue,
)
from deepclf.protocol.tensors import datatype_for, shape_proto, tf_type_name
from deepclf.serving.batching import Batcher, Outputs, batch_key
from deepclf.serving.models import ModelManager, ServedVersion
from deepclf.serving.overload import Admission, Ticket
from deepclf.serving.tfmetrics import TFServingMetrics

log = logging.getLogger("deepclf.serving")

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
#: The kinds of tf.Example APIs, and the tensor aliases their signatures use (signature_constants.h).
CLASSIFY = "classify"
REGRESS = "regress"
EXAMPLES_INPUT = "inputs"
CLASSES_OUTPUT = "classes"
SCORES_OUTPUT = "scores"
REGRESSION_OUTPUT = "outputs"
SIGNATURE_DEF = "signature_def"
#: deepclf extension of GetModelMetadata: the version's manifest.json (labels, input size), packed in an ``Any``
#: holding a ``google.protobuf.StringValue`` whose value is the JSON text. TF Serving refuses the field
#: (INVALID_ARGUMENT), so clients ask for it alone and fall back when refused.
DEEPCLF_MANIFEST = "deepclf_manifest"
METADATA_FIELDS = (SIGNATURE_DEF, DEEPCLF_MANIFEST)
STRING_VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.StringValue"


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


def spec_dtype(dtype: str) -> np.dtype:
    """A ``TensorSpec`` dtype name as a numpy dtype (``"string"`` -> ``object``)."""
    return np.dtype(object) if dtype == "string" else np.dtype(dtype)


def signature_def_map(signatures: Mapping[str, Any], runner: Any = None) -> P.SignatureDefMap:
    """The ``SignatureDefMap`` of a runner's ``SignatureSpec``s (what ``GetModelMetadata`` answers); a runner with
    ``signature_defs`` (serialized ``tensorflow.SignatureDef``s, a SavedModel's own) answers those as they are."""
    out = P.SignatureDefMap()
    real: Mapping[str, bytes] = getattr(runner, "signature_defs", None) or {}
    for key in sorted(real):
        out.signature_def[key].ParseFromString(real[key])
    for key in sorted(set(signatures) - set(real)):
        spec = signatures[key]
        sd = out.signature_def[key]
        sd.method_name = method_name(runner, key)
        for group, tensors in (("inputs", spec.inputs), ("outputs", spec.outputs)):
            for name, t in tensors.items():
                info = getattr(sd, group)[name]
                info.name = f"{key}_{name}:0" if group == "inputs" else f"{key}/{name}:0"
                info.dtype = datatype_for(spec_dtype(t.dtype))
                info.tensor_shape.CopyFrom(shape_proto(t.shape))
    return out


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


def examples_tensor(inp: Any) -> dict[str, np.ndarray]:
    """The signature's inputs for an ``Input``: ``inputs`` = 1-D DT_STRING serialized tf.Examples."""
    serialized = serialize_input(inp)
    arr = np.empty(len(serialized), dtype=object)
    arr[:] = serialized
    return {EXAMPLES_INPUT: arr}


def public_error(exc: BaseException, *, context: str = "") -> P.ServingError:
    """The error to send: ``ServingError``s and package errors as they are, anything else as a generic INTERNAL
    error (the traceback is logged here, never sent)."""
    err = P.from_exception(exc)
    if isinstance(err, P.Internal) and not isinstance(exc, P.ServingError):
        incident = uuid.uuid4().hex[:12]
        log.error("internal error %s%s", incident, f" ({context})" if context else "", exc_info=exc)
        return P.Internal(f"internal server error (incident {incident}); details are in the server log")
    return err


def method_name(runner: Any, key: str) -> str:
    """A signature's ``method_name`` (a runner without method names has predict signatures)."""
    methods: Mapping[str, str] = getattr(runner, "method_names", None) or {}
    return methods.get(key, PREDICT_METHOD_NAME)


def inference_signature(
    signatures: Mapping[str, Any], runner: Any, name: str, kind: str, *, check_method: bool = False
) -> str:
    """The signature key a Classify (``kind="classify"``) or Regress call uses, validated as TF Serving does
    (aliases ``inputs`` and ``classes``/``scores`` or ``outputs``; the method name only with ``check_method``,
    ``--enable_signature_method_name_check``). Shared by the APIs and warmup (``classify_log`` / ``regress_log``
    records)."""
    key = name or SIGNATURE_FLOAT
    spec = signatures.get(key)
    if spec is None:
        raise P.InvalidInput(f"No signature was found with the name: {key}")
    if check_method:
        want = CLASSIFY_METHOD_NAME if kind == CLASSIFY else REGRESS_METHOD_NAME
        what = "classification" if kind == CLASSIFY else "regression"
        got = method_name(runner, key)
        if got != want:
            raise P.InvalidInput(f"Expected {what} signature method_name to be {want}. Was: {got}")

    def debug() -> str:
        return str(signature_def_map({key: spec}, runner).signature_def[key]).strip().replace("\n", " ")

    outs = set(spec.outputs)
    if len(spec.inputs) != 1:
        raise P.InvalidInput("Expected one input Tensor.")
    if kind == CLASSIFY:
        if len(outs) not in (1, 2):
            raise P.InvalidInput(f"Expected one or two output Tensors, found {len(outs)}")
        if EXAMPLES_INPUT not in spec.inputs:
            raise P.InvalidInput(f"No classification inputs found in SignatureDef: {debug()}")
        if not outs & {CLASSES_OUTPUT, SCORES_OUTPUT}:
            raise P.InvalidInput(
                'Expected classification signature outputs to contain at least one of "classes" or "scores". '
                f"Signature was: {debug()}"
            )
    else:
        if len(outs) != 1:
            raise P.InvalidInput("Expected one output Tensor.")
        if EXAMPLES_INPUT not in spec.inputs:
            raise P.InvalidInput(f"No regression inputs found in SignatureDef: {debug()}")
        if REGRESSION_OUTPUT not in outs:
            raise P.InvalidInput(f"No regression outputs found in SignatureDef: {debug()}")
    return key


class ServingCore:
    """Answers Predict, GetModelMetadata and GetModelStatus for the models a ``ModelManager`` serves."""

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

    # -- shared ------------------------------------------------------------------------------------------------

    @staticmethod
    def signature_of(served: ServedVersion, name: str, *, rest: bool = False) -> tuple[str, Any]:
        """The signature key and spec a Predict names ("" = ``serving_default``, or a model's only signature).

        An unknown key is refused in TF Serving's words, which differ by transport: REST looks the signature up
        before converting the JSON (INVALID_ARGUMENT, http_rest_api_handler.cc ``GetInfoMap``), gRPC in
        ``RunPredict`` (FAILED_PRECONDITION, predict_util.cc). Both answer HTTP 400 on REST; neither is a 404."""
        sigs = served.signatures
        key = name or SIGNATURE_FLOAT
        if not name and key not in sigs and len(sigs) == 1:
            key = next(iter(sigs))
        spec = sigs.get(key)
        if spec is None:
            if rest:
                raise P.InvalidInput(f'Serving signature name: "{key}" not found in signature def')
            raise P.FailedPrecondition(f'Serving signature key "{key}" not found.')
        return key, spec

    def check_predict_method(self, served: ServedVersion, key: str) -> None:
        """With ``--enable_signature_method_name_check``: Predict takes predict, classify and regress signatures only,
        else INTERNAL, as predict_util.cc ``VerifySignature`` answers."""
        method = method_name(served.runner, key)
        if self.method_name_check and method not in (PREDICT_METHOD_NAME, CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME):
            raise P.Internal(
                f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD_NAME}, "
                f"{CLASSIFY_METHOD_NAME}, {REGRESS_METHOD_NAME}}}. Was: {method}"
            )

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
    def wait(future: Future[Outputs], info: CallInfo) -> Outputs:
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

    # -- Predict -----------------------------------------------------------------------------------------------

    def decode_rest(self, served: ServedVersion, body: bytes, info: CallInfo) -> tuple[str, R.RestRequest]:
        """Parse a REST predict body once, with the dtypes of the signature it names (JSON carries no types;
        TF Serving takes them from the signature too). The call's work starts here (``CallInfo.begin``)."""
        info.begin()
        found: list[str] = []

        def dtypes_of(sig_name: str) -> dict[str, Any]:
            key, spec = self.signature_of(served, sig_name, rest=True)
            info.signature = key
            found.append(key)
            return {name: spec_dtype(t.dtype) for name, t in spec.inputs.items()}

        req = R.decode_predict_request(body, dtypes_of, budget=self.limits.budget())
        self.check_predict_method(served, found[0])  # after the JSON, as RunPredict checks it
        return found[0], req

    def rest_predict(self, served: ServedVersion, body: bytes, info: CallInfo) -> bytes:
        """A REST predict answered in the calling (pool) thread: decode, run, encode; no batcher. Refuses to
        start once ``info.deadline`` has passed (the request waited in the pool's queue that long)."""
        info.begin()
        key, req = self.decode_rest(served, body, info)
        t0 = time.perf_counter()
        outputs = served.runner.run(req.inputs, key)
        if self.tf_metrics is not None:
            self.tf_metrics.record_runtime(served.model, "Predict", time.perf_counter() - t0)
        return R.encode_predict_response(outputs, req.format)

    def grpc_predict(self, request: P.PredictRequest, info: CallInfo) -> P.PredictResponse:
        """``PredictionService.Predict``, blocking."""
        name, version, label = self.model_spec_of(request)
        info.model = name
        with self.manager.acquire(name, version, label) as served:
            info.fill(served)
            key, spec = self.signature_of(served, request.model_spec.signature_name)
            info.signature = key
            self.check_predict_method(served, key)
            verify_inputs(served, key, spec, request.inputs)
            inputs = self.admit_tensors(served, key, spec, request.inputs)
            wanted = output_filter(spec, request.output_filter)
            outputs = self.wait(self.infer(served, key, inputs, info, api="Predict"), info)
            response = P.PredictResponse()
            self._fill_spec(response.model_spec, served, key)
            for out_name in wanted or sorted(outputs):
                # typed fields (float_val, ...), not tensor_content: what TF Serving answers by default (§6.5)
                response.outputs[out_name].CopyFrom(P.to_tensor_proto(outputs[out_name], typed=True))
            return response

    def admit_tensors(self, served: ServedVersion, key: str, spec: Any, protos: Mapping[str, Any]) -> dict[str, Any]:
        """A Predict request's ``TensorProto``s as arrays, each checked against the signature and the request
        budget before it is filled (a short ``float_val`` declares any shape): alias, rank, fixed dimensions,
        rows and bytes. Models whose signatures TF Serving does not hold to their shapes (any SavedModel
        without a manifest, spec section 7.5) get the budget only."""
        budget = self.limits.budget()
        strict = served.format != "savedmodel-generic"
        out = {}
        for name, proto in protos.items():
            t = spec.inputs.get(name)
            if t is None:
                missing = sorted(set(spec.inputs) - set(protos))
                raise P.InvalidInput(
                    f"input tensor alias not found in signature: {name}. Inputs expected to be in the set "
                    f"{{{','.join(sorted(spec.inputs))}}}" + (f"; missing {missing}" if missing else "")
                )
            P.numpy_dtype_for(proto.dtype)  # an unsupported DataType is named first
            if strict:
                _check_shape(name, t.shape, proto.tensor_shape, generic=served.format.endswith("-generic"))
            batch = bool(t.shape) and t.shape[0] is None
            out[name] = P.to_ndarray(proto, budget=budget, name=name, batch_dim=batch)
        return out

    # -- Classify, Regress, MultiInference (tf.Example inputs; spec §6.1-6.4, §7.2) ------------------------------

    def inference_signature(self, served: ServedVersion, name: str, kind: str) -> str:
        """The signature key a Classify (``kind="classify"``) or Regress call uses, validated as TF Serving does
        (aliases ``inputs`` and ``classes``/``scores`` or ``outputs``; the method name is not checked)."""
        return inference_signature(served.signatures, served.runner, name, kind, check_method=self.method_name_check)

    def examples_tensor(self, inp: Any, budget: RequestBudget | None = None) -> dict[str, np.ndarray]:
        """``examples_tensor`` within the request budget (rows and bytes)."""
        inputs = examples_tensor(inp)
        arr = inputs[EXAMPLES_INPUT]
        (budget or self.limits.budget()).admit(
            EXAMPLES_INPUT, [len(arr)], np.dtype(object), nbytes=8 * len(arr) + sum(map(len, arr))
        )
        return inputs

    @staticmethod
    def fill_classification(outputs: Mapping[str, np.ndarray], n: int, result: Any) -> None:
        """Signature outputs ``classes`` [N, C] strings and/or ``scores`` [N, C] float -> ``ClassificationResult``,
        checked in classifier.cc's order and words (``PostProcessClassificationResult``)."""
        scores = outputs.get(SCORES_OUTPUT)
        classes = outputs.get(CLASSES_OUTPUT)
        for what, t, want in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
            if t is None:
                continue
            if t.ndim != 2:
                raise P.InvalidInput(f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(t)}")
            if tf_type_name(t.dtype) != want:
                raise P.InvalidInput(f"Expected {what} Tensor of {want}. Got: {tf_type_name(t.dtype)}")
            if t.shape[0] != n:
                raise P.InvalidInput(f"Expected {what} output batch size of {n}. Got: {t.shape[0]}")
        if scores is not None and classes is not None and scores.shape[1] != classes.shape[1]:
            raise P.InvalidInput(
                f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
            )
        width = scores.shape[1] if scores is not None else classes.shape[1] if classes is not None else 0
        for i in range(n):
            entry = result.classifications.add()
            for j in range(width):
                c = entry.classes.add()
                if classes is not None:
                    label = classes[i, j]
                    c.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
                if scores is not None:
                    c.score = float(scores[i, j])

    @staticmethod
    def fill_regression(outputs: Mapping[str, np.ndarray], n: int, result: Any) -> None:
        """Signature output ``outputs`` float [N] or [N, 1] -> ``RegressionResult``."""
        t = outputs[REGRESSION_OUTPUT]
        if not (t.ndim == 1 or (t.ndim == 2 and t.shape[1] == 1)):
            raise P.InvalidInput(
                f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {_shape_text(t)}"
            )
        if t.shape[0] != n:
            raise P.InvalidInput(f"Input batch size did not match output batch size: {n} vs. {t.shape[0]}")
        if t.dtype != np.float32:
            raise P.InvalidInput(f"Expected output Tensor of DT_FLOAT.  Got: {tf_type_name(t.dtype)}")
        for v in t.reshape(-1).tolist():
            result.regressions.add().value = v

    def _infer_examples(
        self, served: ServedVersion, key: str, inp: Any, info: CallInfo, api: str | None = None
    ) -> tuple[Outputs, int]:
        inputs = self.examples_tensor(inp)
        return self.wait(self.infer(served, key, inputs, info, api), info), len(inputs[EXAMPLES_INPUT])

    def grpc_classify(self, request: Any, info: CallInfo) -> Any:
        """``PredictionService.Classify``, blocking (a gRPC thread waits for the pool)."""
        return self._grpc_inference(request, info, CLASSIFY, ClassificationResponse(), self.fill_classification)

    def grpc_regress(self, request: Any, info: CallInfo) -> Any:
        """``PredictionService.Regress``, blocking."""
        return self._grpc_inference(request, info, REGRESS, RegressionResponse(), self.fill_regression)

    def _grpc_inference(
        self,
        request: Any,
        info: CallInfo,
        method: str,
        response: Any,
        fill: Callable[[Mapping[str, np.ndarray], int, Any], None],
    ) -> Any:
        """Classify or Regress: the signature checked for ``method``, the examples run, ``response`` filled."""
        name, version, label = self.model_spec_of(request)
        info.model = name
        with self.manager.acquire(name, version, label) as served:
            info.fill(served)
            key = info.signature = self.inference_signature(served, request.model_spec.signature_name, method)
            outputs, n = self._infer_examples(served, key, request.input, info, api=method.capitalize())
            fill(outputs, n, response.result)
            self._fill_spec(response.model_spec, served, key)
            return response

    def grpc_multi_inference(self, request: Any, info: CallInfo) -> Any:
        """``PredictionService.MultiInference``: several classify/regress tasks of one model on the same input."""
        tasks = list(request.tasks)
        name = tasks[0].model_spec.name if tasks else ""
        if not name:
            raise P.InvalidInput("ModelSpec has no name specified.")
        seen: set[str] = set()
        for task in tasks:
            if not task.model_spec.name:
                raise P.InvalidInput("Found ModelSpec with an empty model name.")
            if task.model_spec.name != name:
                raise P.InvalidInput("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            sig = task.model_spec.signature_name or SIGNATURE_FLOAT
            if sig in seen:
                raise P.InvalidInput(f"Duplicate evaluation of signature: {sig}")
            seen.add(sig)
        first = tasks[0].model_spec
        choice = first.WhichOneof("version_choice")
        version = int(first.version.value) if choice == "version" else None
        label = first.version_label if choice == "version_label" else None
        info.model = name
        with self.manager.acquire(name, version, label) as served:
            info.fill(served)
            response = MultiInferenceResponse()
            for task in tasks:
                sig = task.model_spec.signature_name or SIGNATURE_FLOAT
                if sig not in served.signatures:
                    raise P.InvalidInput(f"Requested signature not found in model graph: {sig}")
                if task.method_name not in (CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME):
                    raise P.Unimplemented(f"Unsupported signature method_name: {task.method_name}")
                kind = CLASSIFY if task.method_name == CLASSIFY_METHOD_NAME else REGRESS
                key = self.inference_signature(served, sig, kind)
                outputs, n = self._infer_examples(served, key, request.input, info)
                if len(response.results) == 0 and self.tf_metrics is not None:  # TF Serving: once, after the run
                    self.tf_metrics.record_examples(name, n)
                result = response.results.add()
                self._fill_spec(result.model_spec, served, key)
                if kind == CLASSIFY:
                    self.fill_classification(outputs, n, result.classification_result)
                else:
                    self.fill_regression(outputs, n, result.regression_result)
            return response

    # -- metadata and status ---------------------------------------------------------------------------------

    @staticmethod
    def model_spec_of(
        request: P.PredictRequest | P.GetModelMetadataRequest | P.GetModelStatusRequest,
    ) -> tuple[str, int | None, str | None]:
        """(name, version or None, label or None) of a request's ``model_spec``; no name is INVALID_ARGUMENT."""
        if not request.HasField("model_spec"):
            raise P.InvalidInput("Missing ModelSpec")
        if not request.model_spec.name:
            raise P.InvalidInput("ModelSpec has no name specified.")
        spec = request.model_spec
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            return spec.name, int(spec.version.value), None
        if choice == "version_label":
            return spec.name, None, spec.version_label
        return spec.name, None, None

    @staticmethod
    def _fill_spec(target: P.ModelSpec, served: ServedVersion, signature: str = "") -> None:
        target.name = served.model
        target.version.value = served.version
        if signature:
            target.signature_name = signature

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
        with self.manager.acquire(name, version, label) as served:
            info.fill(served)
            response = P.GetModelMetadataResponse()
            self._fill_spec(response.model_spec, served)
            if DEEPCLF_MANIFEST in fields:
                entry = response.metadata[DEEPCLF_MANIFEST]
                entry.type_url = STRING_VALUE_TYPE_URL
                entry.value = StringValue(value=manifest_json(served)).SerializeToString()
            if SIGNATURE_DEF in fields:
                P.pack_signature_defs(response, signature_def_map(served.signatures, served.runner))
            return response

    def grpc_metadata(self, request: P.GetModelMetadataRequest, info: CallInfo) -> P.GetModelMetadataResponse:
        name, version, label = self.model_spec_of(request)
        info.model = name
        return self.metadata(name, version, label, list(request.metadata_field), info)

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

    def grpc_status(self, request: P.GetModelStatusRequest, info: CallInfo) -> P.GetModelStatusResponse:
        name, version, label = self.model_spec_of(request)
        return self.status(name, version, label, info)


def _shape_text(arr: np.ndarray) -> str:
    """A shape as TensorFlow's ``TensorShape::DebugString`` prints it: ``[2,3,10]``."""
    return "[" + ",".join(str(d) for d in arr.shape) + "]"


def feed_name(served: ServedVersion, key: str, alias: str) -> str:
    """The graph tensor an input alias feeds (``x:0``), as the version's SignatureDef (or its metadata) names it."""
    sd = signature_def_map({key: served.signatures[key]}, served.runner).signature_def[key]
    return sd.inputs[alias].name if alias in sd.inputs else alias


def verify_inputs(served: ServedVersion, key: str, spec: Any, sent: Collection[str]) -> None:
    """A Predict's input aliases checked as TF Serving checks them, in its order and words: the count first
    (predict_util.cc ``VerifyRequestInputsSize``), then each of the signature's aliases (TensorFlow's
    ``saved_model::GetInputValues``). Signature ``defaults`` are not supported: every input must be sent."""
    want, got = set(spec.inputs), set(sent)

    def braces(names: Collection[str]) -> str:
        return "{" + ",".join(sorted(names)) + "}"

    if len(got) != len(want):
        raise P.InvalidInput(
            f"input size does not match signature: {len(got)}!={len(want)} len({braces(got)}) != len({braces(want)})."
            f" Sent extra: {braces(got - want)}. Missing but required: {braces(want - got)}."
        )
    missing = sorted(want - got)
    if missing:
        alias = missing[0]
        raise P.InvalidInput(
            f"Signature input alias: {alias}(feed name: {feed_name(served, key, alias)}) not found in request and "
            f"no default value provided. Inputs expected to be in the request {braces(got)}, or default input alias "
            "set: "
        )


def output_filter(spec: Any, aliases: Any) -> list[str]:
    """A Predict's ``output_filter`` checked as TF Serving checks it (predict_util.cc ``PreProcessPrediction``):
    each alias must be one of the signature's outputs and appear once; empty means every output."""
    seen: list[str] = []
    for alias in aliases:
        if alias not in spec.outputs:
            raise P.InvalidInput(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                f"{{{','.join(sorted(spec.outputs))}}}."
            )
        if alias in seen:
            raise P.InvalidInput(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen


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


def _check_shape(name: str, want: Any, proto_shape: Any, *, generic: bool) -> None:
    """A TensorProto's declared shape against the signature's (``None``: any size), before anything is filled.
    Worded as the runners word it after decoding (``[batch, 64, 64, 3]``; generic models: ``[-1]``)."""
    if want is None or proto_shape.unknown_rank:
        return
    rank = len(proto_shape.dim)
    got = [int(d.size) for d in proto_shape.dim[: min(rank, 8)]]
    if rank != len(want) or any(w is not None and w != g for w, g in zip(want, got, strict=False)):
        free = "-1" if generic else "batch"
        shown = ", ".join(free if w is None else str(w) for w in want)
        got_text = ", ".join(map(str, got)) + (f", ... ({rank} dimensions)" if rank > 8 else "")
        raise P.InvalidInput(
            f"input {name!r} must have shape [{shown}]" + (" (-1: any size)" if generic else "") + f", got [{got_text}]"
        )
