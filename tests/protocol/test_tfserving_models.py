"""TF Serving's test models (tests/tfserving_models.py) answer as docs/tfserving-behaviour.md §8.2 says, and their
models.config parses into both models with half_plus_two's labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tfserving_models import HALF_PLUS_THREE, HALF_PLUS_TWO, LABELS

pytest.importorskip("tensorflow")


def _example(**features: float) -> bytes:
    import tensorflow as tf

    ex = tf.train.Example()
    for name, value in features.items():
        ex.features.feature[name].float_list.value.append(value)
    return ex.SerializeToString()


def test_half_plus_two_signatures_and_answers(tfserving_models: Path) -> None:
    import tensorflow as tf

    m = tf.saved_model.load(str(tfserving_models / HALF_PLUS_TWO / "00000123"))
    assert set(m.signatures) == {
        "serving_default",
        "classify_x_to_y",
        "classify_x2_to_y3",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }
    y = m.signatures["serving_default"](x=tf.constant([[1.0], [2.0], [5.0]]))["y"].numpy()
    assert y.ravel().tolist() == [2.5, 3.0, 4.5]
    ex = tf.constant([_example(x=2.0)])
    assert m.signatures["classify_x_to_y"](inputs=ex)["scores"].numpy().ravel().tolist() == [3.0]
    assert m.signatures["regress_x_to_y"](inputs=ex)["outputs"].numpy().ravel().tolist() == [3.0]
    assert m.signatures["regress_x_to_y2"](inputs=ex)["outputs"].numpy().ravel().tolist() == [4.0]
    assert m.signatures["regress_x2_to_y3"](inputs=tf.constant([[2.0]]))["outputs"].numpy().ravel().tolist() == [4.0]
    assert (tfserving_models / HALF_PLUS_TWO / "00000123" / "assets" / "foo.txt").read_text() == "asset-file-contents"
    assert sorted(p.name for p in (tfserving_models / HALF_PLUS_TWO).iterdir()) == ["00000123", "00000124"]


def test_half_plus_three_answers(tfserving_models: Path) -> None:
    import tensorflow as tf

    m = tf.saved_model.load(str(tfserving_models / HALF_PLUS_THREE / "00000123"))
    y = m.signatures["serving_default"](x=tf.constant([[1.0], [2.0], [5.0]]))["y"].numpy()
    assert y.ravel().tolist() == [3.5, 4.0, 5.5]
    out = m.signatures["regress_x_to_y"](inputs=tf.constant([_example(x=2.0)]))["outputs"]
    assert out.numpy().ravel().tolist() == [4.0]


def test_models_config_serves_both_with_labels(tfserving_models: Path) -> None:
    from deepclf.serving.modelconfig import load_model_config_file

    configs = {c.name: c for c in load_model_config_file(tfserving_models / "models.config")}
    assert set(configs) == {HALF_PLUS_TWO, HALF_PLUS_THREE}
    assert dict(configs[HALF_PLUS_TWO].version_labels) == LABELS
    assert Path(configs[HALF_PLUS_THREE].base_path) == tfserving_models / HALF_PLUS_THREE
