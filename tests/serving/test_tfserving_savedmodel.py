"""Any SavedModel served as TF Serving serves it: TF Serving's half_plus_two/half_plus_three (TF1 SavedModels built
by tests/tfserving_models.py) and a TF2 model with several inputs of other dtypes, through ``deepclf serve`` started with a tensorflow_model_server command line (REST) and
``GenericSavedModelRunner`` directly. Answers from docs/tfserving-behaviour.md §8.2/§8.3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tfserving_models import HALF_PLUS_THREE, HALF_PLUS_TWO

pytest.importorskip("tensorflow")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def tfs_server(tfs_upstream: Any) -> Any:
    """The session's ``deepclf serve`` child process, started with a tensorflow_model_server command line
    (tests/serving/tfs_server.py); it serves half_plus_two (labels stable/canary) and half_plus_three."""
    return tfs_upstream


def _post(srv, path: str, body: dict) -> tuple[int, dict]:
    r = httpx.post(srv.rest_url + path, json=body, timeout=30)
    return r.status_code, r.json()


def test_predict_row_and_columnar(tfs_server) -> None:
    assert _post(tfs_server, f"/v1/models/{HALF_PLUS_TWO}:predict", {"instances": [2.0, 3.0, 4.0]}) == (
        200,
        {"predictions": [3.0, 3.5, 4.0]},
    )
    assert _post(tfs_server, f"/v1/models/{HALF_PLUS_TWO}:predict", {"inputs": [2.0, 3.0, 4.0]}) == (
        200,
        {"outputs": [3.0, 3.5, 4.0]},
    )
    assert _post(tfs_server, f"/v1/models/{HALF_PLUS_THREE}:predict", {"instances": [[1.0], [2.0], [5.0]]}) == (
        200,
        {"predictions": [[3.5], [4.0], [5.5]]},
    )


def test_versions_and_labels(tfs_server) -> None:
    for path in ("", "/versions/123", "/versions/124", "/labels/stable", "/labels/canary"):
        code, doc = _post(tfs_server, f"/v1/models/{HALF_PLUS_TWO}{path}:predict", {"instances": [[2.0]]})
        assert (code, doc) == (200, {"predictions": [[3.0]]}), path
    status = httpx.get(tfs_server.rest_url + f"/v1/models/{HALF_PLUS_TWO}").json()
    assert sorted(int(s["version"]) for s in status["model_version_status"]) == [123, 124]


def test_metadata_is_the_real_signature_def_map(tfs_server) -> None:
    doc = httpx.get(tfs_server.rest_url + f"/v1/models/{HALF_PLUS_TWO}/metadata").json()
    assert doc["model_spec"]["version"] == "124"
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {
        "serving_default",
        "classify_x_to_y",
        "classify_x2_to_y3",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }
    assert sigs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert sigs["serving_default"]["inputs"]["x"]["name"] == "x:0"
    assert sigs["classify_x_to_y"]["method_name"] == "tensorflow/serving/classify"
    assert sigs["classify_x_to_y"]["inputs"]["inputs"]["name"] == "tf_example:0"
    assert sigs["classify_x_to_y"]["inputs"]["inputs"]["dtype"] == "DT_STRING"
    assert sigs["regress_x_to_y2"]["outputs"]["outputs"]["name"] == "y2:0"
    assert set(doc) == {"model_spec", "metadata"}  # TF Serving's answer, nothing added
    ext = httpx.get(tfs_server.rest_url + f"/v1/models/{HALF_PLUS_TWO}/metadata?fields=signature_def").json()
    assert ext["deepclf"]["backend"] == "tensorflow"
    assert ext["deepclf"]["variant"] == "generic"


def test_missing_feature_is_invalid_argument(tfs_server) -> None:
    code, doc = _post(
        tfs_server, f"/v1/models/{HALF_PLUS_TWO}:predict", {"signature_name": "regress_x_to_y", "instances": ["x"]}
    )
    assert code == 400
    assert "error" in doc


def test_tf2_model_with_several_dtypes(tmp_path: Path) -> None:
    import tensorflow as tf

    from deepclf.runtime.savedmodel_generic import GenericSavedModelRunner

    class Multi(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="text"),
                tf.TensorSpec(None, tf.int64, name="count"),
                tf.TensorSpec([None, 2], tf.float64, name="pair"),
            ]
        )
        def serve(self, text, count, pair):
            return {
                "length": tf.strings.length(text),
                "twice": count * 2,
                "upper": tf.strings.upper(text),
                "sum": tf.reduce_sum(pair, axis=-1),
            }

    m = Multi()
    tf.saved_model.save(m, str(tmp_path / "1"), signatures={"serving_default": m.serve, "other": m.serve})
    with GenericSavedModelRunner(tmp_path / "1") as r:
        assert set(r.signatures) == {"serving_default", "other"}
        assert r.method_names["other"] == "tensorflow/serving/predict"
        spec = r.signatures["serving_default"]
        assert spec.inputs["text"].dtype == "string" and spec.inputs["pair"].dtype == "float64"
        assert spec.inputs["pair"].shape == (None, 2)
        out = r.run(
            {
                "text": np.array([b"ab", b"cde"], dtype=object),
                "count": np.array([[1, 2], [3, 4]], np.int64),
                "pair": np.array([[1.0, 2.0], [3.0, 4.0]]),
            },
            "other",
        )
        assert out["length"].tolist() == [2, 3]
        assert out["twice"].tolist() == [[2, 4], [6, 8]]
        assert out["upper"].tolist() == [b"AB", b"CDE"]
        assert out["sum"].dtype == np.float64 and out["sum"].tolist() == [3.0, 7.0]
