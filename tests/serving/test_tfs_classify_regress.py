"""TF Serving's tests of Classify, Regress and MultiInference, case by case, against ``deepclf serve`` started with a
``tensorflow_model_server`` command line (tests/serving/tfs_server.py), through gRPC with the
``tensorflow_serving.apis`` stubs:

* classification_service_test.cc, regression_service_test.cc: ``test_model`` (half_plus_two, version 123);
* classifier_test.cc, regressor_test.cc: their FakeSession and mocked outputs as real graphs (``classifier``,
  ``regressor``; tests/tfserving_upstream_models.py), each case run with the method-name check off and on (the
  upstream ``INSTANTIATE_TEST_SUITE_P(..., Bool())``: a second server with
  ``--enable_signature_method_name_check=true``);
* multi_inference_test.cc (and multi_inference_helper_test.cc, its server-level twin): TF1 half_plus_two with the
  check on, TF2 half_plus_two with it off, as upstream sets them.

Responses are compared whole (upstream's ``EqualsProto``), errors by code and message. Test ids name the upstream
test; docs/tfserving-conformance.md lists every case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from tests.serving.tfs_server import TEST_MODEL, TEST_MODEL_TF2

pytest.importorskip("tensorflow")
apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2

VERSION = 123
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
PREDICT = "tensorflow/serving/predict"
INV = grpc.StatusCode.INVALID_ARGUMENT
RUN_FAILED = "Run totally failed"  # what upstream's mocked session fails with; the stand-in graph asserts it


def _case(upstream: str, test: str, n: int, *values: Any) -> Any:
    return pytest.param(*values, id=f"{upstream}::{test}#{n}")


@pytest.fixture(scope="module")
def stub(tfs_upstream: Any) -> Iterator[Any]:
    with grpc.insecure_channel(tfs_upstream.grpc_target) as channel:
        yield apis.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def checked_stub(tfs_upstream_checked: Any) -> Iterator[Any]:
    with grpc.insecure_channel(tfs_upstream_checked.grpc_target) as channel:
        yield apis.PredictionServiceStub(channel)


@pytest.fixture(params=[False, True], ids=["check_off", "check_on"])
def any_stub(request: pytest.FixtureRequest) -> Any:
    """Both servers: upstream's classifier/regressor tests run once per method-name-check setting."""
    return request.getfixturevalue("checked_stub" if request.param else "stub")


def _matches(details: str, want: str) -> bool:
    """The whole message, but where it ends in a debug dump of a SignatureDef (``...: ``) its start, and where a
    run fails inside the graph the words the graph was given (TF wraps them in its own)."""
    if want == RUN_FAILED:
        return RUN_FAILED in details
    return details.startswith(want) if want.endswith(": ") else details == want


def _error(call: Callable[..., Any], req: Any) -> tuple[Any, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(req, timeout=30)
    return err.value.code(), err.value.details() or ""


def _spec(target: Any, model: str | None, signature: str = "", version: int | None = None) -> None:
    if model is None:
        return
    target.name = model
    if signature:
        target.signature_name = signature
    if version is not None:
        target.version.value = version


# ------------------------------------------------------------------ classification_service / regression_service


def _x_example(target: Any, x: float = 80.0) -> None:
    """The services' example: x=80 (-> 42) plus features the signature does not read (locale, age)."""
    ex = target.example_list.examples.add()
    ex.features.feature["x"].float_list.value.append(x)
    ex.features.feature["locale"].bytes_list.value.append(b"pt_BR")
    ex.features.feature["age"].float_list.value.append(19.0)


def _service_request(kind: str, model: str | None = TEST_MODEL, signature: str = "", with_input: bool = False) -> Any:
    req = (classification_pb2.ClassificationRequest if kind == "classify" else regression_pb2.RegressionRequest)()
    if model is not None:
        req.model_spec.SetInParent()
        _spec(req.model_spec, model, signature)
    if with_input:
        _x_example(req.input)
    return req


SERVICE_ERRORS = [
    (None, "", grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
    ("", "", grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
    ("foo", "", grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(foo)"),
]


@pytest.mark.parametrize(
    ("kind", "upstream", "model", "signature", "code", "message"),
    [
        *(
            _case(f"{up}_service_test", "InvalidModelSpec", i, kind, up, *c)
            for kind, up in (("classify", "classification"), ("regress", "regression"))
            for i, c in enumerate(SERVICE_ERRORS)
        ),
        _case(
            "classification_service_test",
            "InvalidSignature",
            0,
            "classify",
            "classification",
            TEST_MODEL,
            "invalid_signature_name",
            INV,
            "No signature was found with the name: invalid_signature_name",
        ),
        _case(
            "regression_service_test",
            "InvalidSignature",
            0,
            "regress",
            "regression",
            TEST_MODEL,
            "invalid_signature_name",
            INV,
            "No signature was found with the name: invalid_signature_name",
        ),
    ],
)
def test_service_errors(
    stub: Any, kind: str, upstream: str, model: str | None, signature: str, code: Any, message: str
) -> None:
    req = _service_request(kind, model, signature)
    if model == "":
        req.model_spec.name = ""
    call = stub.Classify if kind == "classify" else stub.Regress
    assert _error(call, req) == (code, message)


@pytest.mark.parametrize(
    "kind",
    [
        _case("classification_service_test", "ClassificationSuccess", 0, "classify"),
        _case("regression_service_test", "RegressionSuccess", 0, "regress"),
    ],
)
def test_service_success(stub: Any, kind: str) -> None:
    """x=80 -> 0.5 * 80 + 2 = 42; the response's model_spec names the model, the signature and version 123."""
    signature = f"{kind}_x_to_y"
    req = _service_request(kind, TEST_MODEL, signature, with_input=True)
    if kind == "classify":
        expected: Any = classification_pb2.ClassificationResponse()
        expected.result.classifications.add().classes.add().score = 42
        got = stub.Classify(req, timeout=30)
    else:
        expected = regression_pb2.RegressionResponse()
        expected.result.regressions.add().value = 42
        got = stub.Regress(req, timeout=30)
    _spec(expected.model_spec, TEST_MODEL, signature, VERSION)
    assert got == expected


@pytest.mark.parametrize(
    "kind",
    [
        _case("classification_service_test", "ModelSpecOverride", 0, "classify"),
        _case("regression_service_test", "ModelSpecOverride", 0, "regress"),
    ],
)
def test_service_request_names_the_model(stub: Any, kind: str) -> None:
    """The first half of ModelSpecOverride: a request naming ``test_model`` (no signature, no input) is not
    NOT_FOUND (the model is found; its serving_default is not a classify/regress signature). The override call of
    the second half has no wire form."""
    call = stub.Classify if kind == "classify" else stub.Regress
    code, message = _error(call, _service_request(kind, TEST_MODEL))
    assert code == INV and message.startswith(f"No {'classification' if kind == 'classify' else 'regression'} inputs")


# ------------------------------------------------------------------------------------------------ classifier


def _class_example(pairs: list[tuple[str, float]]) -> Any:
    """classifier_test.cc's ``example()``: the class names as bytes feature ``class``, scores as float ``score``."""
    ex = tf.train.Example()
    for label, score in pairs:
        ex.features.feature["class"].bytes_list.value.append(label.encode())
        ex.features.feature["score"].float_list.value.append(score)
    return ex


TWO = [[("dos", 2), ("uno", 1)], [("cuatro", 4), ("tres", 3)]]


def _classify(signature: str = "", examples: list | None = None, context: list | None = None) -> Any:
    req = classification_pb2.ClassificationRequest()
    _spec(req.model_spec, "classifier", signature)
    if context is not None:
        target = req.input.example_list_with_context
        target.context.CopyFrom(_class_example(context))
        for pairs in examples or []:
            target.examples.add().CopyFrom(_class_example(pairs))
    elif examples is not None:
        for pairs in examples:
            req.input.example_list.examples.add().CopyFrom(_class_example(pairs))
    return req


def _classes(rows: list[list[tuple[str | None, float | None]]], signature: str) -> Any:
    resp = classification_pb2.ClassificationResponse()
    for row in rows:
        c = resp.result.classifications.add()
        for label, score in row:
            cl = c.classes.add()
            if label is not None:
                cl.label = label
            if score is not None:
                cl.score = score
    _spec(resp.model_spec, "classifier", signature or "serving_default", VERSION)
    return resp


CLASSIFIER_OK = [
    ("ExampleList", "", TWO, None, [[("dos", 2), ("uno", 1)], [("cuatro", 4), ("tres", 3)]]),
    ("ExampleListWithContext", "", [[], []], [("dos", 2), ("uno", 1)], [[("dos", 2), ("uno", 1)]] * 2),
    (
        "ExampleListWithContext_DuplicateFeatures",
        "",
        [[], [("tres", 3), ("cuatro", 4)]],
        [("uno", 1), ("dos", 2)],
        [[("uno", 1), ("dos", 2)], [("tres", 3), ("cuatro", 4)]],
    ),
    ("ClassesOnly", "classes_only", TWO, None, [[("dos", None), ("uno", None)], [("cuatro", None), ("tres", None)]]),
    ("ScoresOnly", "scores_only", TWO, None, [[(None, 2), (None, 1)], [(None, 4), (None, 3)]]),
    (
        "ZeroScoresArePresent",
        "scores_only",
        [[("minus", -1), ("zero", 0), ("one", 1)]],
        None,
        [[(None, -1), (None, 0), (None, 1)]],
    ),
    ("ValidNamedSignature", "output_plus_one", TWO, None, [[("dos", 3), ("uno", 2)], [("cuatro", 5), ("tres", 4)]]),
    ("MethodNameCheck", "", [[("dos", 2), ("uno", 1)]], None, [[("dos", 2), ("uno", 1)]]),
]


@pytest.mark.parametrize(
    ("signature", "examples", "context", "rows"),
    [_case("classifier_test", name, 0, *c) for name, *c in CLASSIFIER_OK],
)
def test_classifier_results(any_stub: Any, signature: str, examples: list, context: list | None, rows: list) -> None:
    """The fake session copies ``class``/``score`` into ``classes``/``scores``; the context is merged into each
    example, the example's own features winning (ExampleListWithContext_DuplicateFeatures)."""
    got = any_stub.Classify(_classify(signature, examples, context), timeout=30)
    assert got == _classes(rows, signature)
    if signature == "scores_only" and len(rows[0]) == 3:  # ZeroScoresArePresent: three classes, 0 among them
        assert [c.score for c in got.result.classifications[0].classes] == [-1.0, 0.0, 1.0]


CLASSIFIER_ERRORS = [
    (
        "InvalidNamedSignature",
        "invalid_regression_signature",
        TWO,
        None,
        'Expected classification signature outputs to contain at least one of "classes" or "scores". Signature was: ',
        "Expected classification signature method_name to be tensorflow/serving/classify. Was: "
        "tensorflow/serving/regress",
    ),
    (
        "MalformedScores",
        "ImproperlySizedScoresSignature",
        TWO,
        None,
        "Expected Tensor shape: [batch_size num_classes] but got [2,2,10]",
        None,
    ),
    ("MissingClassificationSignature", "no_inputs", [[("dos", 2)]], None, "Expected one input Tensor.", None),
    ("EmptyInput", "", None, None, "Input is empty.", None),
    ("EmptyExampleList", "", [], None, "Input is empty.", None),
    ("EmptyExampleListWithContext", "", [], [("dos", 2)], "Input is empty.", None),
    ("RunsFails", "runs_fails", [[("dos", 2)]], None, RUN_FAILED, None),
    (
        "ClassesIncorrectTensorBatchSize",
        "classes_wrong_batch",
        TWO,
        None,
        "Expected classes output batch size of 2. Got: 1",
        None,
    ),
    (
        "ClassesIncorrectTensorType",
        "classes_wrong_type",
        TWO,
        None,
        "Expected classes Tensor of DT_STRING. Got: DT_FLOAT",
        None,
    ),
    (
        "ScoresIncorrectTensorBatchSize",
        "scores_wrong_batch",
        TWO,
        None,
        "Expected scores output batch size of 2. Got: 1",
        None,
    ),
    (
        "ScoresIncorrectTensorType",
        "scores_wrong_type",
        TWO,
        None,
        "Expected scores Tensor of DT_FLOAT. Got: DT_STRING",
        None,
    ),
    (
        "MismatchedNumberOfTensorClasses",
        "mismatched_widths",
        TWO,
        None,
        "Tensors class and score should match in dim_size(1). Got 2 vs. 3",
        None,
    ),
]


@pytest.mark.parametrize(
    ("signature", "examples", "context", "message", "checked_message"),
    [_case("classifier_test", name, 0, *c) for name, *c in CLASSIFIER_ERRORS],
)
def test_classifier_errors(
    any_stub: Any,
    request: pytest.FixtureRequest,
    signature: str,
    examples: Any,
    context: Any,
    message: str,
    checked_message: str | None,
) -> None:
    """INVALID_ARGUMENT, worded as classifier.cc (upstream checks the code and, for most, a substring; a run that
    fails reports the graph's error, an assertion carrying upstream's "Run totally failed")."""
    req = _classify(signature, examples, context)
    if examples is None and context is None:
        req.input.SetInParent()  # EmptyInput: the input is touched, nothing in it
    code, details = _error(any_stub.Classify, req)
    checked = request.node.callspec.params["any_stub"]
    want = checked_message if checked and checked_message else message
    assert code == INV and _matches(details, want), details


@pytest.mark.parametrize(
    ("signature", "method"),
    [
        _case("classifier_test", "MethodNameCheck", 1, "unsupported_method", "not/supported/method"),
        _case("classifier_test", "MethodNameCheck", 2, "empty_method", ""),
    ],
)
def test_classifier_method_name_check(stub: Any, checked_stub: Any, signature: str, method: str) -> None:
    """A signature whose method is not classify: served with the check off, refused with it on."""
    req = _classify(signature, [[("dos", 2), ("uno", 1)]])
    assert stub.Classify(req, timeout=30) == _classes([[("dos", 2), ("uno", 1)]], signature)
    assert _error(checked_stub.Classify, req) == (
        INV,
        f"Expected classification signature method_name to be {CLASSIFY}. Was: {method}",
    )


# ------------------------------------------------------------------------------------------------- regressor


def _output_example(value: float) -> Any:
    ex = tf.train.Example()
    ex.features.feature["output"].float_list.value.append(value)
    return ex


def _regress(signature: str = "", values: list[float] | None = None, context: float | None = None) -> Any:
    req = regression_pb2.RegressionRequest()
    _spec(req.model_spec, "regressor", signature)
    if context is not None:
        target = req.input.example_list_with_context
        target.context.CopyFrom(_output_example(context))
        for _ in values or []:
            target.examples.add()
    elif values is not None:
        for v in values:
            req.input.example_list.examples.add().CopyFrom(_output_example(v))
    return req


def _regressions(values: list[float], signature: str) -> Any:
    resp = regression_pb2.RegressionResponse()
    for v in values:
        resp.result.regressions.add().value = v
    _spec(resp.model_spec, "regressor", signature or "serving_default", VERSION)
    return resp


@pytest.mark.parametrize(
    ("signature", "values", "context", "expected"),
    [
        _case("regressor_test", "BasicExampleList", 0, "", [2.0, 3.0], None, [2.0, 3.0]),
        _case("regressor_test", "BasicExampleListWithContext", 0, "", [0.0, 0.0], 3.0, [3.0, 3.0]),
        _case("regressor_test", "ValidNamedSignature", 0, "output_plus_one", [2.0, 3.0], None, [3.0, 4.0]),
        _case("regressor_test", "MethodNameCheck", 0, "", [2.0], None, [2.0]),
    ],
)
def test_regressor_results(any_stub: Any, signature: str, values: list, context: Any, expected: list) -> None:
    """``outputs`` [batch] or (output_plus_one) [batch, 1]; the context's ``output`` reaches each empty example."""
    assert any_stub.Regress(_regress(signature, values, context), timeout=30) == _regressions(expected, signature)


REGRESSOR_ERRORS = [
    (
        "InvalidNamedSignature",
        "invalid_classification_signature",
        [2.0, 3.0],
        None,
        "No regression outputs found in SignatureDef: ",
        "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/classify",
    ),
    (
        "MalformedOutputs",
        "ImproperlySizedOutputSignature",
        [2.0, 3.0],
        None,
        "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got [2,1,10]",
        None,
    ),
    ("EmptyInput", "", None, None, "Input is empty.", None),
    ("EmptyExampleList", "", [], None, "Input is empty.", None),
    ("EmptyExampleListWithContext", "", [], 3.0, "Input is empty.", None),
    ("RunsFails", "runs_fails", [2.0], None, RUN_FAILED, None),
    (
        "UnexpectedOutputTensorSize",
        "wrong_batch",
        [2.0],
        None,
        "Input batch size did not match output batch size: 1 vs. 2",
        None,
    ),
    (
        "UnexpectedOutputTensorType",
        "wrong_type",
        [2.0],
        None,
        "Expected output Tensor of DT_FLOAT.  Got: DT_STRING",
        None,
    ),
    ("MissingRegressionSignature", "no_inputs", [2.0], None, "Expected one input Tensor.", None),
]


@pytest.mark.parametrize(
    ("signature", "values", "context", "message", "checked_message"),
    [_case("regressor_test", name, 0, *c) for name, *c in REGRESSOR_ERRORS],
)
def test_regressor_errors(
    any_stub: Any,
    request: pytest.FixtureRequest,
    signature: str,
    values: Any,
    context: Any,
    message: str,
    checked_message: str | None,
) -> None:
    req = _regress(signature, values, context)
    if values is None and context is None:
        req.input.SetInParent()
    code, details = _error(any_stub.Regress, req)
    checked = request.node.callspec.params["any_stub"]
    want = checked_message if checked and checked_message else message
    assert code == INV and _matches(details, want), details


@pytest.mark.parametrize(
    ("signature", "method"),
    [
        _case("regressor_test", "MethodNameCheck", 1, "unsupported_method", "not/supported/method"),
        _case("regressor_test", "MethodNameCheck", 2, "empty_method", ""),
    ],
)
def test_regressor_method_name_check(stub: Any, checked_stub: Any, signature: str, method: str) -> None:
    req = _regress(signature, [2.0])
    assert stub.Regress(req, timeout=30) == _regressions([2.0], signature)
    assert _error(checked_stub.Regress, req) == (
        INV,
        f"Expected regression signature method_name to be {REGRESS}. Was: {method}",
    )


# ------------------------------------------------------------------------------------------- multi_inference


MODELS = {"tf1": TEST_MODEL, "tf2": TEST_MODEL_TF2}


@pytest.fixture(params=["tf1", "tf2"])
def multi(request: pytest.FixtureRequest) -> tuple[Any, str]:
    """(stub, model): upstream's TF1 model runs with the method-name check on, the TF2 one with it off."""
    stub_name = "checked_stub" if request.param == "tf1" else "stub"
    return request.getfixturevalue(stub_name), MODELS[request.param]


def _multi(model: str, tasks: list[tuple[str, str]], x: float | None = 2.0, version: int | None = None) -> Any:
    req = inference_pb2.MultiInferenceRequest()
    for signature, method in tasks:
        task = req.tasks.add()
        _spec(task.model_spec, model, signature, version)
        task.method_name = method
    if x is not None:
        req.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    return req


MULTI_ERRORS = [
    ("MissingInputTest", [("regress_x_to_y", REGRESS)], None, INV, "Input is empty."),
    (
        "UndefinedSignatureTest",
        [("ThisSignatureDoesNotExist", REGRESS)],
        2.0,
        INV,
        "Requested signature not found in model graph: ThisSignatureDoesNotExist",
    ),
    (
        "EvaluateDuplicateSignaturesTest",
        [("regress_x_to_y", REGRESS), ("regress_x_to_y", REGRESS)],
        2.0,
        INV,
        "Duplicate evaluation of signature: regress_x_to_y",
    ),
    (
        "UsupportedSignatureTypeTest",
        [("serving_default", PREDICT)],
        2.0,
        grpc.StatusCode.UNIMPLEMENTED,
        f"Unsupported signature method_name: {PREDICT}",
    ),
]


@pytest.mark.parametrize(
    ("tasks", "x", "code", "message"), [_case("multi_inference_test", name, 0, *c) for name, *c in MULTI_ERRORS]
)
def test_multi_inference_errors(multi: tuple[Any, str], tasks: list, x: Any, code: Any, message: str) -> None:
    stub, model = multi
    assert _error(stub.MultiInference, _multi(model, tasks, x)) == (code, message)


@pytest.mark.parametrize("n", [_case("multi_inference_test", "InconsistentModelSpecsInRequestTest", 0, 0)])
def test_multi_inference_inconsistent_model_specs(multi: tuple[Any, str], n: int) -> None:
    stub, model = multi
    req = _multi(model, [("regress_x_to_y", REGRESS)])
    task = req.tasks.add()
    _spec(task.model_spec, "ModelDoesNotExist", "regress_x_to_y")
    task.method_name = REGRESS
    assert _error(stub.MultiInference, req) == (
        INV,
        "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
    )


@pytest.mark.parametrize(
    ("tasks", "results"),
    [
        _case("multi_inference_test", "ValidSingleSignatureTest", 0, [("regress_x_to_y", REGRESS)], [("r", 3.0)]),
        _case(
            "multi_inference_test",
            "MultipleValidRegressSignaturesTest",
            0,
            [("regress_x_to_y", REGRESS), ("regress_x_to_y2", REGRESS)],
            [("r", 3.0), ("r", 4.0)],
        ),
        _case(
            "multi_inference_test",
            "RegressAndClassifySignaturesTest",
            0,
            [("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)],
            [("r", 3.0), ("c", 3.0)],
        ),
    ],
)
def test_multi_inference_results(multi: tuple[Any, str], tasks: list, results: list) -> None:
    """Results in task order, each with the task's model_spec and the served version (123 here; the unit test
    builds its runner with version 1). The helper test's twins of these cases name version 123 in the tasks."""
    stub, model = multi
    for version in (None, VERSION):  # multi_inference_test (no version), multi_inference_helper_test (123)
        expected = inference_pb2.MultiInferenceResponse()
        for (signature, _method), (kind, value) in zip(tasks, results, strict=True):
            result = expected.results.add()
            _spec(result.model_spec, model, signature, VERSION)
            if kind == "r":
                result.regression_result.regressions.add().value = value
            else:
                result.classification_result.classifications.add().classes.add().score = value
        assert stub.MultiInference(_multi(model, tasks, version=version), timeout=30) == expected
