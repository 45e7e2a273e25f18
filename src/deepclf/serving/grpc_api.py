"""TF Serving's gRPC API translated onto ``ServingCore``: request messages in, response messages out.

One method per RPC, each blocking in the gRPC thread that calls it and taking the steps every transport takes
(``deepclf.serving.core``): resolve the version, check the signature, decode the inputs, run, encode::

    api = GrpcApi(core)
    response = api.predict(request, info)        # PredictRequest -> PredictResponse (INVALID_ARGUMENT, ... raised)

``grpc_server`` wraps these methods with admission, the call's deadline, metrics and the error map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepclf import protocol as P
from deepclf.manifest import SIGNATURE_FLOAT
from deepclf.protocol.messages import ClassificationResponse, MultiInferenceResponse, RegressionResponse
from deepclf.serving.core import CallInfo, ServingCore, fill_model_spec
from deepclf.serving.examples import fill_classification, fill_regression
from deepclf.serving.models import ServedVersion
from deepclf.serving.signaturedefs import (
    CLASSIFY,
    CLASSIFY_METHOD_NAME,
    EXAMPLES_INPUT,
    REGRESS,
    REGRESS_METHOD_NAME,
    check_shape,
    output_filter,
    verify_inputs,
)


def model_spec_of(request: Any) -> tuple[str, int | None, str | None]:
    """(name, version or None, label or None) of a request's ``model_spec``; none or no name is INVALID_ARGUMENT."""
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


class GrpcApi:
    """``PredictionService`` and ``ModelService.GetModelStatus`` over one ``ServingCore``."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def predict(self, request: P.PredictRequest, info: CallInfo) -> P.PredictResponse:
        """``PredictionService.Predict``."""
        core = self.core
        with core.acquire(*model_spec_of(request), info) as served:
            key, spec = core.predict_signature(served, request.model_spec.signature_name)
            info.signature = key
            core.check_predict_method(served, key)
            verify_inputs(served, key, spec, request.inputs)
            inputs = self.admit_tensors(served, spec, request.inputs)
            wanted = output_filter(spec, request.output_filter)
            outputs = core.wait(core.predict(served, key, inputs, info), info)
            response = P.PredictResponse()
            fill_model_spec(response.model_spec, served, key)
            for out_name in wanted or sorted(outputs):
                # typed fields (float_val, ...), not tensor_content: what TF Serving answers by default (§6.5)
                response.outputs[out_name].CopyFrom(P.to_tensor_proto(outputs[out_name], typed=True))
            return response

    def admit_tensors(self, served: ServedVersion, spec: Any, protos: Mapping[str, Any]) -> dict[str, Any]:
        """A Predict request's ``TensorProto``s as arrays, each checked against the signature and the request
        budget before it is filled (a short ``float_val`` declares any shape): alias, rank, fixed dimensions,
        rows and bytes. Models whose signatures TF Serving does not hold to their shapes (any SavedModel
        without a manifest, spec section 7.5) get the budget only."""
        budget = self.core.limits.budget()
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
                check_shape(name, t.shape, proto.tensor_shape, generic=served.format.endswith("-generic"))
            batch = bool(t.shape) and t.shape[0] is None
            out[name] = P.to_ndarray(proto, budget=budget, name=name, batch_dim=batch)
        return out

    def classify(self, request: Any, info: CallInfo) -> Any:
        """``PredictionService.Classify``."""
        core = self.core
        with core.acquire(*model_spec_of(request), info) as served:
            key = info.signature = core.inference_signature(served, request.model_spec.signature_name, CLASSIFY)
            inputs = core.examples_tensor(request.input)
            response = ClassificationResponse()
            response.result.CopyFrom(core.wait(core.classify(served, key, inputs, info), info))
            fill_model_spec(response.model_spec, served, key)
            return response

    def regress(self, request: Any, info: CallInfo) -> Any:
        """``PredictionService.Regress``."""
        core = self.core
        with core.acquire(*model_spec_of(request), info) as served:
            key = info.signature = core.inference_signature(served, request.model_spec.signature_name, REGRESS)
            inputs = core.examples_tensor(request.input)
            response = RegressionResponse()
            response.result.CopyFrom(core.wait(core.regress(served, key, inputs, info), info))
            fill_model_spec(response.model_spec, served, key)
            return response

    def multi_inference(self, request: Any, info: CallInfo) -> Any:
        """``PredictionService.MultiInference``: several classify/regress tasks of one model on the same input,
        checked as multi_inference.cc checks them, run one after the other."""
        core = self.core
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
        with core.acquire(name, version, label, info) as served:
            response = MultiInferenceResponse()
            for task in tasks:
                sig = task.model_spec.signature_name or SIGNATURE_FLOAT
                if sig not in served.signatures:
                    raise P.InvalidInput(f"Requested signature not found in model graph: {sig}")
                if task.method_name not in (CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME):
                    raise P.Unimplemented(f"Unsupported signature method_name: {task.method_name}")
                kind = CLASSIFY if task.method_name == CLASSIFY_METHOD_NAME else REGRESS
                key = core.inference_signature(served, sig, kind)
                inputs = core.examples_tensor(request.input)
                n = len(inputs[EXAMPLES_INPUT])
                # the raw outputs, not classify()/regress(): TF Serving counts the examples once, after the first
                # task's run and before its results are checked, and no task's runtime (multi_inference.cc)
                outputs = core.wait(core.infer(served, key, inputs, info), info)
                if len(response.results) == 0 and core.tf_metrics is not None:
                    core.tf_metrics.record_examples(name, n)
                result = response.results.add()
                fill_model_spec(result.model_spec, served, key)
                if kind == CLASSIFY:
                    fill_classification(outputs, n, result.classification_result)
                else:
                    fill_regression(outputs, n, result.regression_result)
            return response

    def metadata(self, request: P.GetModelMetadataRequest, info: CallInfo) -> P.GetModelMetadataResponse:
        """``PredictionService.GetModelMetadata``."""
        name, version, label = model_spec_of(request)
        info.model = name
        return self.core.metadata(name, version, label, list(request.metadata_field), info)

    def status(self, request: P.GetModelStatusRequest, info: CallInfo) -> P.GetModelStatusResponse:
        """``ModelService.GetModelStatus``."""
        return self.core.status(*model_spec_of(request), info)
