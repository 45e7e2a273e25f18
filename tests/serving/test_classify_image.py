"""TF Serving's Classify API on a deepclf model: ``classify_image_bytes`` takes tf.Examples carrying the encoded
photo in ``image/encoded`` and answers the manifest labels (classes) and probabilities (scores). The same request
gets the same answer through REST, gRPC and the runner in process (exactly), on every TFLite variant without
TensorFlow, and from the SavedModel runner (fp32 LiteRT within 1e-4 of it)."""

from __future__ import annotations

import base64
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests

from deepclf import protocol as P
from deepclf.protocol.messages import ClassificationRequest, Input
from deepclf.protocol.rpc import CLASSIFY
from deepclf.runtime import load_runner
from deepclf.runtime.base import EXAMPLE_IMAGE_FEATURE, SIGNATURE_EXAMPLE
from tests.prebuilt import require_tensorflow

SIG = SIGNATURE_EXAMPLE


def _examples(photos: list[Path]) -> np.ndarray:
    inp = Input()
    for p in photos:
        inp.example_list.examples.add().features.feature[EXAMPLE_IMAGE_FEATURE].bytes_list.value.append(p.read_bytes())
    arr = np.empty(len(photos), dtype=object)
    arr[:] = [ex.SerializeToString() for ex in inp.example_list.examples]
    return arr


def _rows(classes: np.ndarray, scores: np.ndarray) -> list[list[list]]:
    return [
        [[c.decode(), float(s)] for c, s in zip(cr, sr, strict=True)] for cr, sr in zip(classes, scores, strict=True)
    ]


def test_classify_rest_grpc_and_in_process_agree(server, models_root: Path, photos: list[Path]) -> None:
    with load_runner(models_root / "flowers" / "1", variant="fp32") as r:
        local = r.run({"inputs": _examples(photos)}, SIG)
        labels = list(r.manifest.labels)
    assert local["classes"].shape == local["scores"].shape == (len(photos), len(labels))
    assert [c.decode() for c in local["classes"][0]] == labels
    np.testing.assert_allclose(local["scores"].sum(-1), 1.0, atol=1e-4)
    want = _rows(local["classes"], local["scores"].astype(np.float32))

    body = {
        "signature_name": SIG,
        "examples": [{EXAMPLE_IMAGE_FEATURE: {"b64": base64.b64encode(p.read_bytes()).decode()}} for p in photos],
    }
    resp_rest = requests.post(server.rest_url + "/v1/models/flowers:classify", json=body, timeout=60)
    assert resp_rest.status_code == 200, resp_rest.text
    rest = resp_rest.json()["results"]
    # REST writes float32 scores in their shortest form: exactly the same float32 values once read back
    assert [[[lab, np.float32(s)] for lab, s in row] for row in rest] == [
        [[lab, np.float32(s)] for lab, s in row] for row in want
    ]

    req = ClassificationRequest()
    req.model_spec.name = "flowers"
    req.model_spec.signature_name = SIG
    for p in photos:
        req.input.example_list.examples.add().features.feature[EXAMPLE_IMAGE_FEATURE].bytes_list.value.append(
            p.read_bytes()
        )
    with grpc.insecure_channel(server.grpc_target) as channel:
        resp = P.unary_unary(channel, CLASSIFY)(req, timeout=60)
    got = [[[c.label, c.score] for c in cl.classes] for cl in resp.result.classifications]
    assert got == [[[lab, float(np.float32(s))] for lab, s in row] for row in want]
    assert resp.model_spec.signature_name == SIG and resp.model_spec.version.value == 1


def test_metadata_lists_the_classify_signature(server) -> None:
    doc = requests.get(server.rest_url + "/v1/models/flowers/metadata", timeout=30).json()
    assert set(doc) == {"model_spec", "metadata"}  # TF Serving's answer, nothing added
    sd = doc["metadata"]["signature_def"]["signature_def"][SIG]
    assert sd["method_name"] == "tensorflow/serving/classify"
    assert set(sd["inputs"]) == {"inputs"} and set(sd["outputs"]) == {"classes", "scores"}
    # which backend answers: only when asked with the ?fields= extension
    ext = requests.get(server.rest_url + "/v1/models/flowers/metadata?fields=signature_def", timeout=30).json()
    assert ext["deepclf"] == {"backend": "litert", "variant": "fp32", "runner": "tflite-fp32"}


def test_every_variant_and_the_savedmodel_classify(shared_version_dir: Path, photos: list[Path]) -> None:
    require_tensorflow("the SavedModel is the reference")
    examples = _examples(photos)
    with load_runner(shared_version_dir, format="savedmodel") as sm:
        ref = sm.run({"inputs": examples}, SIG)
    for variant in ("fp32", "fp16", "dynamic", "int8"):
        with load_runner(shared_version_dir, variant=variant) as r:
            out = r.run({"inputs": examples}, SIG)
        assert out["classes"].tolist() == ref["classes"].tolist(), variant
        atol = 1e-4 if variant == "fp32" else 0.1
        np.testing.assert_allclose(out["scores"], ref["scores"], atol=atol, err_msg=variant)


def test_bad_examples(shared_version_dir: Path) -> None:
    from deepclf.errors import InvalidInputError

    with load_runner(shared_version_dir, variant="fp32") as r:
        with pytest.raises(InvalidInputError, match="Could not parse example input"):
            r.run({"inputs": np.array([b"\xff\xff"], dtype=object)}, SIG)
        ex = Input().example_list.examples.add()
        ex.features.feature["other"].float_list.value.append(1.0)
        with pytest.raises(InvalidInputError, match="image/encoded"):
            r.run({"inputs": np.array([ex.SerializeToString()], dtype=object)}, SIG)


def test_example_reader_matches_protobuf() -> None:
    from deepclf.runtime.example import ExampleParseError, parse_example

    inp = Input()
    ex = inp.example_list.examples.add()
    ex.features.feature["b"].bytes_list.value.extend([b"one", b""])
    ex.features.feature["f"].float_list.value.extend([2.5, -1.0])
    ex.features.feature["i"].int64_list.value.extend([3, -7, 2**62])
    ex.features.feature["empty"].SetInParent()
    assert parse_example(ex.SerializeToString()) == {
        "b": [b"one", b""],
        "f": [2.5, -1.0],
        "i": [3, -7, 2**62],
        "empty": [],
    }
    context = Input().example_list.examples.add()
    context.features.feature["b"].bytes_list.value.append(b"ctx")
    context.features.feature["c"].int64_list.value.append(1)
    merged = parse_example(context.SerializeToString() + ex.SerializeToString())
    assert merged["b"] == [b"one", b""] and merged["c"] == [1]
    with pytest.raises(ExampleParseError):
        parse_example(b"\x0a\x05ab")


def test_exported_savedmodel_classify_signature(shared_version_dir: Path, photos: list[Path]) -> None:
    """The SavedModel's own ``classify_image_bytes`` (tf.io.parse_example in the graph), run as TF Serving runs
    it (every signature of the SavedModel, manifest ignored), answers what LiteRT fp32 answers: same labels,
    scores within 1e-4 (TF's in-graph JPEG decoding vs deepclf.preprocessing)."""
    require_tensorflow("the SavedModel's own graph")
    from deepclf.runtime.savedmodel_generic import GenericSavedModelRunner

    examples = _examples(photos)
    with GenericSavedModelRunner(shared_version_dir) as sm:
        assert sm.method_names[SIG] == "tensorflow/serving/classify"
        assert set(sm.signatures[SIG].inputs) == {"inputs"}
        assert set(sm.signatures[SIG].outputs) == {"classes", "scores"}
        tf_out = sm.run({"inputs": examples}, SIG)
    with load_runner(shared_version_dir, variant="fp32") as r:
        lite = r.run({"inputs": examples}, SIG)
    assert tf_out["classes"].tolist() == lite["classes"].tolist()
    np.testing.assert_allclose(tf_out["scores"], lite["scores"], atol=1e-4)
