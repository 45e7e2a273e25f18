"""TFLite/LiteRT conversion of the float-only SavedModel into the four variants of a version folder.

The variants (names, files, what each quantizes) are the table in ``deepclf.variants``: fp32 (``model.tflite``,
TF Serving's ``--prefer_tflite_model`` file name), fp16, dynamic and int8 (uint8 input and output, calibrated on
real images).

Where softmax sits in int8: inside the integer graph. TFLite's int8 softmax has a fixed output scale of 1/256
(uint8 at the interface: scale 1/256, zero point 0), so probabilities come in 1/256 steps (at most 255/256).
That is accurate enough for a score, keeps the model integer end to end (what NPUs and the Edge TPU need), and the
class decision does not suffer from it: ``classes`` is the argmax of the int8 logits, before softmax.
The input is uint8 with a calibrated scale of ~1.0 and zero point 0: the 0..255 pixel range maps onto uint8 almost
one to one, so feeding pixels costs only the rounding of resized values (the runtime quantizes with the tensor's
own scale and zero point).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import ModelFormatError, UsageError, require_tensorflow
from deepclf.manifest import INPUT_FLOAT, SIGNATURE_FLOAT
from deepclf.variants import VARIANTS, parse_variant


def convert_variant(
    source: str | Path,
    variant: str,
    representative: Callable[[], Iterable[np.ndarray]] | None = None,
) -> bytes:
    """Convert the float-only SavedModel at ``source`` into one TFLite variant; returns the flatbuffer.

    ``representative`` (int8 only) returns an iterable of float32 [H, W, 3] images in 0..255 for calibration.
    """
    variant = parse_variant(variant)
    tf = require_tensorflow("converting to TFLite")
    conv = tf.lite.TFLiteConverter.from_saved_model(str(source), signature_keys=[SIGNATURE_FLOAT])
    if variant != "fp32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "fp16":
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if representative is None:
            raise UsageError("the int8 variant needs calibration images (a representative dataset)")

        def dataset() -> Iterator[dict[str, np.ndarray]]:
            for img in representative():
                yield {INPUT_FLOAT: np.asarray(img, dtype=np.float32)[None]}

        conv.representative_dataset = dataset
        # Integer-only builtins: conversion fails instead of silently leaving float ops behind.
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_dtype = getattr(tf, VARIANTS[variant].input_dtype)  # uint8: the table says what the runtime will feed
        conv.inference_input_type = io_dtype
        conv.inference_output_type = io_dtype
    try:
        with warnings.catch_warnings():
            # The converter's int8 calibration uses tf.lite.Interpreter internally, which warns about its own
            # deprecation on every call; our runtime already uses ai_edge_litert, so the warning is noise here.
            warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
            return bytes(conv.convert())
    except Exception as exc:  # the converter raises ConverterError/ValueError/RuntimeError with MLIR text
        raise ModelFormatError(f"TFLite conversion of the {variant} variant failed: {str(exc)[:2000]}") from exc


def graph_ops(model_content: bytes) -> dict[str, int]:
    """How many operators of each builtin kind a TFLite flatbuffer holds (all subgraphs), read from the file itself
    with LiteRT's schema (no interpreter, no delegate rewriting the graph)::

        graph_ops(Path("model_int8.tflite").read_bytes())
        # {'QUANTIZE': 2, 'MUL': 1, 'ADD': 8, 'CONV_2D': 25, 'DEPTHWISE_CONV_2D': 7, 'MEAN': 1, 'FULLY_CONNECTED': 1}

    A batch normalization the converter did not fold into its convolution would show as a MUL and an ADD of its
    own; the edge model's graph holds one of each, its input rescaling (tests/convert/test_convert_edge.py).
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_content, 0)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        op = model.OperatorCodes(i)
        # builtin codes above 127 live in BuiltinCode; older files keep small ones in DeprecatedBuiltinCode only
        codes.append(max(op.BuiltinCode(), op.DeprecatedBuiltinCode()))
    counts: dict[str, int] = {}
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for i in range(graph.OperatorsLength()):
            name = names.get(codes[graph.Operators(i).OpcodeIndex()], "CUSTOM")
            counts[name] = counts.get(name, 0) + 1
    return counts


def quantization_params(model_content: bytes) -> dict[str, Any]:
    """Input/output dtypes and (scale, zero_point) of a converted model's serving signature, read with LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=model_content).get_signature_runner(SIGNATURE_FLOAT)

    def describe(d: dict[str, Any]) -> dict[str, Any]:
        q = d.get("quantization_parameters") or {}
        scales = q.get("scales")
        info: dict[str, Any] = {"dtype": np.dtype(d["dtype"]).name}
        if scales is not None and len(scales):
            info["scale"] = float(scales[0])
            info["zero_point"] = int(q["zero_points"][0])
        return info

    return {
        "inputs": {k: describe(v) for k, v in runner.get_input_details().items()},
        "outputs": {k: describe(v) for k, v in runner.get_output_details().items()},
    }
