"""SignatureDefs as TF Serving reads them: the map GetModelMetadata answers, method names, and the checks a
Predict, Classify or Regress makes on the signature it names and on the inputs it sends, in TF Serving's order and
words (predict_util.cc, classifier.cc, regressor.cc; spec sections 6 and 7). Transport-neutral: REST, gRPC and
warmup call the same checks::

    key, spec = predict_signature(served.signatures, "")            # "" -> serving_default (or the only one)
    verify_inputs(served, key, spec, request_aliases)               # INVALID_ARGUMENT in TF Serving's words
    wanted = output_filter(spec, ["probabilities"])
    key = inference_signature(served.signatures, served.runner, "", CLASSIFY)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from deepclf import protocol as P
from deepclf.manifest import SIGNATURE_FLOAT
from deepclf.protocol.tensors import datatype_for, shape_proto
from deepclf.serving.models import ServedVersion

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


def spec_dtype(dtype: str) -> np.dtype:
    """A ``TensorSpec`` dtype name as a numpy dtype (``"string"`` -> ``object``)."""
    return np.dtype(object) if dtype == "string" else np.dtype(dtype)


def method_name(runner: Any, key: str) -> str:
    """A signature's ``method_name`` (a runner without method names has predict signatures)."""
    methods: Mapping[str, str] = getattr(runner, "method_names", None) or {}
    return methods.get(key, PREDICT_METHOD_NAME)


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


def predict_signature(signatures: Mapping[str, Any], name: str, *, rest: bool = False) -> tuple[str, Any]:
    """The signature key and spec a Predict names ("" = ``serving_default``, or a model's only signature).

    An unknown key is refused in TF Serving's words, which differ by transport: REST looks the signature up
    before converting the JSON (INVALID_ARGUMENT, http_rest_api_handler.cc ``GetInfoMap``), gRPC in
    ``RunPredict`` (FAILED_PRECONDITION, predict_util.cc). Both answer HTTP 400 on REST; neither is a 404."""
    key = name or SIGNATURE_FLOAT
    if not name and key not in signatures and len(signatures) == 1:
        key = next(iter(signatures))
    spec = signatures.get(key)
    if spec is None:
        if rest:
            raise P.InvalidInput(f'Serving signature name: "{key}" not found in signature def')
        raise P.FailedPrecondition(f'Serving signature key "{key}" not found.')
    return key, spec


def check_predict_method(runner: Any, key: str) -> None:
    """``--enable_signature_method_name_check``: Predict takes predict, classify and regress signatures only,
    else INTERNAL, as predict_util.cc ``VerifySignature`` answers."""
    method = method_name(runner, key)
    if method not in (PREDICT_METHOD_NAME, CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME):
        raise P.Internal(
            f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD_NAME}, "
            f"{CLASSIFY_METHOD_NAME}, {REGRESS_METHOD_NAME}}}. Was: {method}"
        )


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


def feed_name(served: ServedVersion, key: str, alias: str) -> str:
    """The graph tensor an input alias feeds (``x:0``), as the version's SignatureDef (or its metadata) names it."""
    sd = signature_def_map({key: served.signatures[key]}, served.runner).signature_def[key]
    return sd.inputs[alias].name if alias in sd.inputs else alias


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


def check_shape(name: str, want: Any, proto_shape: Any, *, generic: bool) -> None:
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
