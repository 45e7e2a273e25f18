"""Any .tflite model without a deepclf manifest, TF-free: a model with two signatures (several inputs and outputs,
int32 and float32) is served through LiteRT signature runners behind TF Serving's API, and a model LiteRT cannot
run (an op it has no kernel for) is a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")  # to build the models only
httpx = pytest.importorskip("httpx")


def _convert(tmp: Path, module, signatures: dict, *, custom: bool = False) -> bytes:
    import tensorflow as tf

    tf.saved_model.save(module, str(tmp), signatures=signatures)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp), signature_keys=list(signatures))
    if custom:
        converter.allow_custom_ops = True  # the op is left for an implementation LiteRT does not have
    return converter.convert()


@pytest.fixture(scope="module")
def generic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tensorflow as tf

    class Multi(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None], tf.float32, name="a"), tf.TensorSpec([None], tf.float32, name="b")]
        )
        def add(self, a, b):
            return {"sum": a + b, "diff": a - b}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int32, name="n")])
        def double(self, n):
            return {"twice": n * 2}

    m = Multi()
    root = tmp_path_factory.mktemp("generic")
    model = _convert(root / "sm", m, {"serving_default": m.add, "double": m.double})
    (root / "multi" / "1").mkdir(parents=True)
    (root / "multi" / "1" / "model.tflite").write_bytes(model)
    return root


@pytest.fixture(scope="module")
def generic_server(generic_root: Path) -> Iterator:
    from deepclf.serving import EdgeServer, ModelConfig, ServerConfig

    cfg = ServerConfig(
        model_configs=[ModelConfig("multi", str(generic_root / "multi"))],
        host="127.0.0.1",
        port=0,
        rest_api_port=0,
        threads=2,
        poll_seconds=0,
    )
    with EdgeServer(cfg) as srv:
        yield srv


def test_two_signatures_over_rest(generic_server) -> None:
    url = generic_server.rest_url + "/v1/models/multi:predict"
    r = httpx.post(url, json={"inputs": {"a": [1.0, 2.0], "b": [0.5, 0.5]}}, timeout=30)
    assert r.json() == {"outputs": {"diff": [0.5, 1.5], "sum": [1.5, 2.5]}}
    r = httpx.post(url, json={"signature_name": "double", "instances": [[1, 2], [3, 4]]}, timeout=30)
    assert r.json() == {"predictions": [[2, 4], [6, 8]]}


def test_metadata_of_a_generic_tflite(generic_server) -> None:
    doc = httpx.get(generic_server.rest_url + "/v1/models/multi/metadata", timeout=30).json()
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {"serving_default", "double"}
    assert sigs["double"]["inputs"]["n"]["dtype"] == "DT_INT32"
    assert set(sigs["serving_default"]["outputs"]) == {"sum", "diff"}
    assert set(doc) == {"model_spec", "metadata"}  # TF Serving's answer, nothing added
    ext = httpx.get(generic_server.rest_url + "/v1/models/multi/metadata?fields=signature_def", timeout=30).json()
    assert ext["deepclf"] == {"backend": "litert", "variant": "generic", "runner": "tflite-generic"}


def test_unsupported_op_is_a_clear_error(tmp_path: Path) -> None:
    import tensorflow as tf

    from deepclf.errors import DeepclfError
    from deepclf.runtime.generic import GenericLiteRTRunner

    class Strings(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
        def upper(self, s):
            return {"u": tf.strings.upper(s)}

    m = Strings()
    path = tmp_path / "model.tflite"
    path.write_bytes(_convert(tmp_path / "sm", m, {"serving_default": m.upper}, custom=True))
    with pytest.raises(DeepclfError) as err:
        GenericLiteRTRunner(path).run({"s": [b"a"]})
    text = str(err.value)
    assert "StringUpper" in text or "model.tflite" in text, text
