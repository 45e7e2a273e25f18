"""Real SavedModels that stand in for the fixtures of TF Serving's own unit tests, so that each upstream case can be
sent to ``deepclf serve`` over the wire (tests/serving/test_tfs_*.py, the table in docs/tfserving-conformance.md).

TF Serving's unit tests call its C++ functions with a fake ``Session`` (classifier_test.cc, regressor_test.cc), a
mock that returns chosen tensors, or a bare ``TensorInfo`` map (json_tensor_test.cc). A server is only reachable
through a model, so each fake becomes a graph that computes what the fake returned:

* ``classifier`` (TF1): serialized tf.Examples in ``input:0``; ``classes`` = the bytes feature ``class`` and
  ``scores`` = the float feature ``score`` of each Example, as classifier_test.cc's FakeSession copies them. One
  signature per variant the tests set up or mock: ``output_plus_one``, ``invalid_regression_signature``,
  ``ImproperlySizedScoresSignature``, ``classes_only``, ``scores_only``, outputs of the wrong batch size or dtype,
  mismatched widths, no inputs, a run that fails, unchecked method names.
* ``regressor`` (TF1): ``outputs`` = the float feature ``output`` ([batch]), regressor_test.cc's FakeSession, with
  the same kind of variants.
* ``counter`` (TF1): predict_util_test.cc's ``saved_model_counter``: a variable read, incremented, reset and
  incremented by ``delta`` by four signatures, three of them without inputs; plus one signature without outputs.
* ``json_tensor`` (TF2): identity signatures whose input aliases and dtypes are the ``TensorInfo`` maps of
  json_tensor_test.cc, so a REST body is decoded with those dtypes and the decoded tensors come back as the
  response; plus outputs the JSON writer must refuse (complex64, a scalar, inconsistent batch sizes),
  zero-row outputs, and ``examples_b64`` / ``examples_size``, which hand the serialized tf.Examples of a
  classify / regress body back (as base64 labels, as byte counts).

Usage (TensorFlow needed, tests only)::

    root = build_upstream_models(tmp_path)   # root/{classifier,regressor,counter,json_tensor}/00000123
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
VERSION_DIR = "00000123"  # version 123, as in TF Serving's testdata

#: (input aliases -> tensors, output aliases -> tensors, method name) per signature key
Signatures = dict[str, tuple[dict[str, Any], dict[str, Any], str]]


def _save_tf1(export_dir: Path, build: Callable[[Any], Signatures]) -> Path:
    """A TF1 SavedModel (tag ``serve``) of the graph ``build(tf)`` makes; its variables initialised to their
    initial values."""
    import tensorflow as tf  # tests only

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        signatures = build(tf)
        info = v1.saved_model.utils.build_tensor_info
        defs = {
            key: v1.saved_model.signature_def_utils.build_signature_def(
                {k: info(t) for k, t in ins.items()}, {k: info(t) for k, t in outs.items()}, method
            )
            for key, (ins, outs, method) in signatures.items()
        }
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(export_dir))
            builder.add_meta_graph_and_variables(
                sess, [v1.saved_model.tag_constants.SERVING], signature_def_map=defs, strip_default_attrs=True
            )
            builder.save()
    return export_dir


def _failing(tf: Any, value: Any) -> Any:
    """``value``, computed only after an assertion that always fails ("Run totally failed", as the mocks return)."""
    check = tf.debugging.Assert(tf.constant(False), ["Run totally failed"])
    with tf.control_dependencies([check]):
        return tf.identity(value)


def save_classifier(export_dir: Path) -> Path:
    """classifier_test.cc's FakeSession as a graph (module docstring)."""

    def build(tf: Any) -> Signatures:
        v1 = tf.compat.v1
        examples = v1.placeholder(tf.string, [None], name="input")
        parsed = v1.parse_example(
            examples, {"class": v1.VarLenFeature(tf.string), "score": v1.VarLenFeature(tf.float32)}
        )
        classes = tf.identity(tf.sparse.to_dense(parsed["class"], default_value=""), name="output")
        scores = tf.identity(tf.sparse.to_dense(parsed["score"], default_value=0.0), name="score")
        plus_one = tf.add(scores, 1.0, name="outputPlusOne")
        rank3 = tf.zeros(tf.concat([tf.shape(scores), [10]], 0), name="ImproperlySizedScores")
        ins = {"inputs": examples}
        both = {"classes": classes, "scores": scores}
        return {
            "serving_default": (ins, both, CLASSIFY),
            "output_plus_one": (ins, {"classes": classes, "scores": plus_one}, CLASSIFY),
            "invalid_regression_signature": (ins, {"outputs": plus_one}, REGRESS),
            "ImproperlySizedScoresSignature": (ins, {"classes": classes, "scores": rank3}, CLASSIFY),
            "classes_only": (ins, {"classes": classes}, CLASSIFY),
            "scores_only": (ins, {"scores": scores}, CLASSIFY),
            "classes_wrong_batch": (ins, {"classes": classes[:1], "scores": scores}, CLASSIFY),
            "classes_wrong_type": (ins, {"classes": tf.identity(scores), "scores": scores}, CLASSIFY),
            "scores_wrong_batch": (ins, {"classes": classes, "scores": scores[:1]}, CLASSIFY),
            "scores_wrong_type": (ins, {"classes": classes, "scores": tf.strings.as_string(scores)}, CLASSIFY),
            "mismatched_widths": (
                ins,
                {"classes": classes, "scores": tf.concat([scores, tf.zeros_like(scores[:, :1])], 1)},
                CLASSIFY,
            ),
            "no_inputs": ({}, {"scores": tf.constant([[1.0]])}, CLASSIFY),
            "runs_fails": (ins, {"classes": classes, "scores": _failing(tf, scores)}, CLASSIFY),
            "unsupported_method": (ins, both, "not/supported/method"),
            "empty_method": (ins, both, ""),
        }

    return _save_tf1(export_dir, build)


def save_regressor(export_dir: Path) -> Path:
    """regressor_test.cc's FakeSession as a graph (module docstring)."""

    def build(tf: Any) -> Signatures:
        v1 = tf.compat.v1
        examples = v1.placeholder(tf.string, [None], name="input")
        parsed = v1.parse_example(examples, {"output": v1.FixedLenFeature([1], tf.float32)})
        output = tf.reshape(parsed["output"], [-1], name="output")  # [batch]
        plus_one = tf.add(parsed["output"], 1.0, name="outputPlusOne")  # [batch, 1]
        rank3 = tf.zeros(tf.concat([tf.shape(parsed["output"]), [10]], 0), name="ImproperlySizedOutput")
        ins = {"inputs": examples}
        return {
            "serving_default": (ins, {"outputs": output}, REGRESS),
            "output_plus_one": (ins, {"outputs": plus_one}, REGRESS),
            "invalid_classification_signature": (ins, {"scores": plus_one}, CLASSIFY),
            "ImproperlySizedOutputSignature": (ins, {"outputs": rank3}, REGRESS),
            "wrong_batch": (ins, {"outputs": tf.concat([output, output], 0)}, REGRESS),
            "wrong_type": (ins, {"outputs": tf.strings.as_string(output)}, REGRESS),
            "no_inputs": ({}, {"outputs": tf.constant([1.0])}, REGRESS),
            "runs_fails": (ins, {"outputs": _failing(tf, output)}, REGRESS),
            "unsupported_method": (ins, {"outputs": output}, "not/supported/method"),
            "empty_method": (ins, {"outputs": output}, ""),
        }

    return _save_tf1(export_dir, build)


def save_counter(export_dir: Path) -> Path:
    """predict_util_test.cc's ``saved_model_counter``: a float variable behind get/incr/reset/incr_by signatures
    (stateful: the calls' order matters), and ``no_outputs`` (a signature that fetches nothing)."""

    def build(tf: Any) -> Signatures:
        v1 = tf.compat.v1
        counter = v1.Variable(0.0, name="counter", use_resource=True)
        delta = v1.placeholder(tf.float32, [], name="delta")
        x = v1.placeholder(tf.float32, [None], name="x")

        def after(op: Any) -> Any:  # the counter's value once ``op`` has run
            with tf.control_dependencies([op]):
                return tf.identity(counter.read_value())

        return {
            "get_counter": ({}, {"output": tf.identity(counter.read_value())}, PREDICT),
            "incr_counter": ({}, {"output": after(counter.assign_add(1.0))}, PREDICT),
            "reset_counter": ({}, {"output": after(counter.assign(0.0))}, PREDICT),
            "incr_counter_by": ({"delta": delta}, {"output": after(counter.assign_add(delta))}, PREDICT),
            "no_outputs": ({"x": x}, {}, PREDICT),
        }

    return _save_tf1(export_dir, build)


def save_json_tensor(export_dir: Path) -> Path:
    """json_tensor_test.cc's ``TensorInfo`` maps as identity signatures (module docstring)."""
    import tensorflow as tf  # tests only

    def spec(dtype: Any, name: str) -> Any:
        return tf.TensorSpec(None, dtype, name=name)

    def echo(**specs: Any) -> Any:
        """A signature taking ``specs`` (alias -> dtype) and answering each input under its own alias."""
        names = list(specs)

        def fn(*args: Any) -> dict[str, Any]:
            return {n: tf.identity(a) for n, a in zip(names, args, strict=True)}

        return tf.function(fn, input_signature=[spec(dt, n) for n, dt in specs.items()])

    def derived(out: Callable[[Any], dict[str, Any]], dtype: Any = tf.float32, name: str = "x") -> Any:
        return tf.function(lambda x: out(x), input_signature=[spec(dtype, name)])

    module = tf.Module()
    signatures = {
        "int32": echo(default=tf.int32),
        "float": echo(default=tf.float32),
        "double": echo(default=tf.float64),
        "string": echo(default=tf.string),
        "multi": echo(int_tensor=tf.int32, str_tensor=tf.string, float_tensor=tf.float32, dbl_tensor=tf.float64),
        "columnar": echo(int_tensor=tf.int32, str_tensor=tf.string, bin_tensor=tf.string),
        "int_and_str": echo(int_tensor=tf.int32, str_tensor=tf.string),
        "str_tensor": echo(str_tensor=tf.string),
        "int_tensor": echo(int_tensor=tf.int32),
        "bytes_out": derived(lambda x: {"str_tensor_bytes": tf.identity(x)}, tf.string),
        "five": echo(
            int_tensor=tf.int32,
            str_tensor=tf.string,
            float_tensor=tf.float32,
            double_scalar_tensor=tf.float64,
            str_tensor_bytes=tf.string,
        ),
        "complex": derived(lambda x: {"tensor": tf.complex(x, x)}),
        "scalar": derived(lambda x: {"tensor": tf.reduce_sum(tf.cast(x, tf.int32))}),
        "inconsistent": derived(lambda x: {"int_tensor": x, "str_tensor": tf.strings.as_string(x[:1])}),
        "zero_rows": derived(lambda x: {"int_tensor": tf.zeros([0, 2], tf.int32)}),
        "zero_rows2": derived(
            lambda x: {"str_tensor": tf.zeros([0, 1, 2], tf.string), "float_tensor": tf.zeros([0, 3, 4])}
        ),
        # the Examples a classify / regress body became, back to the client: each serialized Example as a label
        # (web-safe base64), and as a regression value its length in bytes
        "examples_b64": derived(
            lambda x: {
                "classes": tf.reshape(tf.io.encode_base64(x), [-1, 1]),
                "scores": tf.zeros([tf.size(x), 1]),
            },
            tf.string,
            "inputs",
        ),
        "examples_size": derived(lambda x: {"outputs": tf.cast(tf.strings.length(x), tf.float32)}, tf.string, "inputs"),
        "zero_and_one_row": derived(
            lambda x: {"int_tensor": tf.zeros([0, 2], tf.int32), "str_tensor": tf.fill([1, 2], "foo")}
        ),
    }
    tf.saved_model.save(
        module, str(export_dir), signatures={k: f.get_concrete_function() for k, f in signatures.items()}
    )
    return export_dir


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "classifier": save_classifier,
    "regressor": save_regressor,
    "counter": save_counter,
    "json_tensor": save_json_tensor,
}


def build_upstream_models(root: Path) -> Path:
    """``root/<name>/00000123`` for every model in ``BUILDERS``."""
    for name, build in BUILDERS.items():
        build(root / name / VERSION_DIR)
    return root
