"""The edge model goes through everything the tutorial CNNs go through: ``deepclf train`` with its recipe, then
``deepclf convert`` with default options (SavedModel + four LiteRT variants, the int8 agreement gate), then the
edge server, parity across every format and transport, and the latency bench.

Trained for real on the session's generated photos at 48x48 (the code paths are those of 128x128; the real photos'
numbers are benchmarks/models.py's). What conversion must keep: every batch normalization folded into its
convolution and every ReLU fused (the int8 graph is convolutions, the residual additions and the input rescaling,
nothing else), and none of the training-time augmentation in any exported graph.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

tf: Any = pytest.importorskip("tensorflow")

from deepclf.convert.pipeline import ConvertOptions, convert_run
from deepclf.convert.tflite import graph_ops
from deepclf.manifest import Manifest

#: Op types of the augmentation policy (deepclf.train.augment) and of Keras' random layers.
AUGMENTATION_OPS = ("ImageProjectiveTransformV3", "StatelessRandomUniformV2", "RandomUniform", "StatelessRandomUniform")


@pytest.fixture(scope="module")
def edge_version(gen_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepclf.train.trainer import TrainConfig, train

    base = tmp_path_factory.mktemp("edge")
    run = base / "runs" / "edge"
    train(
        TrainConfig(
            model="edge", data_dir=str(gen_photos), run_dir=str(run), epochs=4, img_size=(48, 48), batch_size=16
        ),
        log=lambda s: None,
        verbose=0,
    )
    # default options, as `deepclf convert RUN --out MODELS` (the gate at 0.9 included)
    return convert_run(run, base / "models", ConvertOptions(name="edge"), log=lambda s: None).version_dir


def _graph_op_types(saved_model_dir: Path) -> collections.Counter[str]:
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    types: collections.Counter[str] = collections.Counter()
    for mg in sm.meta_graphs:
        types.update(node.op for node in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            types.update(node.op for node in fn.node_def)
    return types


def test_edge_converts_with_batch_norm_folded_and_int8_within_the_gate(edge_version: Path, gen_photos: Path) -> None:
    import json

    report = json.loads((edge_version / "conversion_report.json").read_text())
    assert set(report["variants"]) == {"fp32", "fp16", "dynamic", "int8"}
    for variant, entry in report["variants"].items():
        assert entry["parity"]["top1_agreement"] >= 0.9, variant  # the gate passed: the version was published
    int8 = report["variants"]["int8"]
    assert int8["quantization"]["inputs"]["image"]["dtype"] == "uint8"
    assert int8["size_bytes"] < 2_000_000

    model = tf.keras.models.load_model(
        edge_version.parent.parent.parent / "runs" / "edge" / "model.keras", compile=False
    )
    layers = collections.Counter(type(layer).__name__ for layer in model.layers)
    ops = graph_ops((edge_version / "model_int8.tflite").read_bytes())
    assert ops == int8["ops"]
    # One kernel per convolution, nothing for the batch normalizations (folded) or the ReLUs (fused); the only
    # elementwise ops are the residual additions and the input's Rescaling (one MUL, one ADD).
    assert layers["BatchNormalization"] == layers["Conv2D"] + layers["DepthwiseConv2D"]
    assert ops == {
        "QUANTIZE": 2,  # uint8 in -> int8, int8 -> uint8 out
        "MUL": 1,
        "ADD": layers["Add"] + 1,
        "CONV_2D": layers["Conv2D"],
        "DEPTHWISE_CONV_2D": layers["DepthwiseConv2D"],
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
        "SOFTMAX": 1,  # the signature's probabilities
        "ARG_MAX": 1,  # and classes
    }
    fp32_ops = report["variants"]["fp32"]["ops"]
    assert fp32_ops == {k: v for k, v in ops.items() if k != "QUANTIZE"}  # the same graph, in float

    types = _graph_op_types(edge_version)
    assert types["Conv2D"] > 0  # the scan sees the model's own graph
    assert not [t for t in AUGMENTATION_OPS if types[t]], types
    m = Manifest.load(edge_version)
    assert m.architecture == "edge" and m.input.size == (48, 48) and "ops" not in m.variants["int8"]


def test_edge_is_served_and_every_format_and_transport_agrees(edge_version: Path, gen_photos: Path) -> None:
    from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
    from deepclf.bench.parity import ParityImages, run_parity
    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(
        model_name="edge",
        model_base_path=str(edge_version.parent),
        port=0,
        rest_api_port=0,
        access_log=False,
        poll_seconds=0,
        threads=2,
        format="int8",
    )
    run = edge_version.parent.parent.parent / "runs" / "edge"
    with EdgeServer(cfg) as srv:
        rest, grpc = srv.rest_url.split("://", 1)[1], srv.grpc_target
        targets = [
            f"keras:{run}",
            f"savedmodel:{edge_version}",
            *(f"tflite:{edge_version}?variant={v}" for v in ("fp32", "fp16", "dynamic", "int8")),
            f"rest://{rest}/edge?send=bytes",
            f"grpc://{grpc}/edge",
        ]
        report = run_parity(targets, ParityImages.from_folder(gen_photos, limit=20))
        for t in report.targets:
            assert t.status == "ok", (t.name, t.error)
        assert report.passed, [(t.name, t.checks) for t in report.targets]
        served = [t for t in report.targets if t.kind == "served"]
        assert len(served) == 2 and all(t.max_abs_diff == 0.0 for t in served)  # the same int8 runner
        latency = run_latency(
            [f"tflite:{edge_version}?variant=int8", f"rest://{rest}/edge"],
            LatencyOptions(scenarios=("single-stream",), duration=0.3, warmup=1, quiet=True),
            images=sample_images(n=2),
        )
        for run_ in latency.targets:
            assert run_.status == "ok", run_.error
            assert all(r.errors == 0 and r.count > 0 for r in run_.results)
