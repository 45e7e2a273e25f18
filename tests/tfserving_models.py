"""TF Serving's test models, built here with TensorFlow from the description in docs/tfserving-behaviour.md §8.1/§8.2.

``half_plus_two``: a TF1 graph (``tf.compat.v1``) saved with ``SavedModelBuilder`` (tag ``serve``), variables
``a=0.5, b=2, c=3, a2=0.5, c2=3``; a ``tf_example`` string placeholder parsed for ``x`` (required) and ``x2``
(default 0.0); ``y = a*x+b``, ``y2 = a*x+c``, ``y3 = a2*x2+c2``; an asset ``foo.txt``. Signatures:

* ``serving_default`` (predict): ``x`` -> ``y``
* ``classify_x_to_y`` (classify): ``inputs`` (serialized tf.Example) -> ``scores`` = y
* ``classify_x2_to_y3`` (classify): ``inputs`` = x2 (float) -> ``scores`` = y3
* ``regress_x_to_y`` / ``regress_x_to_y2`` (regress): ``inputs`` (tf.Example) -> ``outputs`` = y / y2
* ``regress_x2_to_y3`` (regress): ``inputs`` = x2 (float) -> ``outputs`` = y3

``half_plus_three``: the same with ``b=3`` (``serving_default`` x -> y = 0.5x+3, ``regress_x_to_y`` -> 0.5x+3), plus
the regress signature under the key ``tensorflow/serving/regress`` as in TF Serving's checked-in model.

Usage (TensorFlow needed, tests only)::

    from tests.tfserving_models import build_tfserving_models
    root = build_tfserving_models(tmp_path)   # root/half_plus_two/{00000123,00000124}, root/half_plus_three/...
    # root/models.config serves both, half_plus_two with labels stable -> 123, canary -> 124
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HALF_PLUS_TWO = "half_plus_two"
HALF_PLUS_THREE = "half_plus_three"
#: Version folder names (zero-padded as in TF Serving's testdata; parsed numerically to 123 and 124).
VERSION_DIRS = ("00000123", "00000124")
LABELS = {"stable": 123, "canary": 124}

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


def save_half_plus(export_dir: Path, b: float = 2.0) -> Path:
    """Write one version of half_plus_two (``b=2``) or half_plus_three (``b=3``) as a TF1 SavedModel at
    ``export_dir`` (which must not exist). Returns ``export_dir``."""
    import tensorflow as tf  # tests only

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        a = v1.Variable(0.5, name="a")
        bv = v1.Variable(b, name="b")
        c = v1.Variable(3.0, name="c")
        a2 = v1.Variable(0.5, name="a2")
        c2 = v1.Variable(3.0, name="c2")
        # no shape: TF Serving's checked-in model declares it so (its metadata says "unknown_rank": true)
        serialized = v1.placeholder(tf.string, name="tf_example")
        features = {
            "x": v1.FixedLenFeature([1], tf.float32),
            "x2": v1.FixedLenFeature([1], tf.float32, default_value=[0.0]),
        }
        parsed = v1.parse_example(tf.reshape(serialized, [-1]), features)  # [batch, 1] outputs, as TF Serving's
        x = tf.identity(parsed["x"], name="x")
        y = tf.add(tf.multiply(a, x), bv, name="y")
        y2 = tf.add(tf.multiply(a, x), c, name="y2")
        x2 = tf.identity(parsed["x2"], name="x2")
        y3 = tf.add(tf.multiply(a2, x2), c2, name="y3")

        asset_dir = export_dir.parent / f".{export_dir.name}-assets"
        asset_dir.mkdir(parents=True, exist_ok=True)
        asset_file = asset_dir / "foo.txt"
        asset_file.write_text("asset-file-contents")
        asset_path = tf.constant(str(asset_file), name="filename_tensor_const")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset_path)
        filename = v1.Variable("", name="filename_tensor", trainable=False)
        init_op = v1.group(v1.assign(filename, asset_path), name="init_op")

        info = v1.saved_model.utils.build_tensor_info
        build = v1.saved_model.signature_def_utils.build_signature_def

        def sig(inputs: dict, outputs: dict, method: str):
            return build({k: info(t) for k, t in inputs.items()}, {k: info(t) for k, t in outputs.items()}, method)

        signatures = {
            "serving_default": sig({"x": x}, {"y": y}, PREDICT),
            "classify_x_to_y": sig({"inputs": serialized}, {"scores": y}, CLASSIFY),
            "classify_x2_to_y3": sig({"inputs": x2}, {"scores": y3}, CLASSIFY),
            "regress_x_to_y": sig({"inputs": serialized}, {"outputs": y}, REGRESS),
            "regress_x_to_y2": sig({"inputs": serialized}, {"outputs": y2}, REGRESS),
            "regress_x2_to_y3": sig({"inputs": x2}, {"outputs": y3}, REGRESS),
        }
        if b == 3.0:  # half_plus_three's checked-in model also has its regress signature under the method's name
            signatures[REGRESS] = sig({"inputs": serialized}, {"outputs": tf.identity(y)}, REGRESS)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(export_dir))
            builder.add_meta_graph_and_variables(
                sess,
                [v1.saved_model.tag_constants.SERVING],
                signature_def_map=signatures,
                assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
                main_op=init_op,
                strip_default_attrs=True,
            )
            builder.save()
    for f in asset_dir.iterdir():
        f.unlink()
    asset_dir.rmdir()
    return export_dir


def save_half_plus_two_tf2(export_dir: Path) -> Path:
    """TF Serving's TF2 half_plus_two (spec §8.1): a ``tf.Module`` saved with ``tf.saved_model.save``; every
    signature has method ``tensorflow/serving/predict`` (TF Serving's Classify/Regress ignore the method name).
    ``serving_default`` x [1] -> y; ``classify_x_to_y`` / ``regress_x_to_y`` / ``regress_x_to_y2`` take ``inputs``
    [None] serialized tf.Examples; ``classify_x2_to_y3`` / ``regress_x2_to_y3`` take ``inputs`` [1] float."""
    import tensorflow as tf  # tests only

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tf.Variable(0.5)
            self.b = tf.Variable(2.0)
            self.c = tf.Variable(3.0)

        def _x(self, inputs):
            return tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]

        @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="x")])
        def predict(self, x):
            return {"y": self.a * x + self.b}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify_xy(self, inputs):
            return {"scores": self.a * self._x(inputs) + self.b}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress_xy(self, inputs):
            return {"outputs": self.a * self._x(inputs) + self.b}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress_xy2(self, inputs):
            return {"outputs": self.a * self._x(inputs) + self.c}

        @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="inputs")])
        def classify_x2y3(self, inputs):
            return {"scores": self.a * inputs + self.c}

        @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="inputs")])
        def regress_x2y3(self, inputs):
            return {"outputs": self.a * inputs + self.c}

    m = HalfPlusTwo()
    signatures = {
        "serving_default": m.predict,
        "classify_x_to_y": m.classify_xy,
        "regress_x_to_y": m.regress_xy,
        "regress_x_to_y2": m.regress_xy2,
        "classify_x2_to_y3": m.classify_x2y3,
        "regress_x2_to_y3": m.regress_x2y3,
    }
    tf.saved_model.save(m, str(export_dir), signatures=signatures)
    return export_dir


def models_config_text(root: Path) -> str:
    """A models.config (text ModelServerConfig) serving both models, half_plus_two's two versions with labels."""
    labels = "\n".join(f"    version_labels {{ key: '{k}' value: {v} }}" for k, v in LABELS.items())
    return (
        "model_config_list {\n"
        "  config {\n"
        f"    name: '{HALF_PLUS_TWO}'\n"
        f"    base_path: '{root / HALF_PLUS_TWO}'\n"
        "    model_platform: 'tensorflow'\n"
        "    model_version_policy { all {} }\n"
        f"{labels}\n"
        "  }\n"
        "  config {\n"
        f"    name: '{HALF_PLUS_THREE}'\n"
        f"    base_path: '{root / HALF_PLUS_THREE}'\n"
        "    model_platform: 'tensorflow'\n"
        "  }\n"
        "}\n"
    )


def build_tfserving_models(root: Path) -> Path:
    """``root/half_plus_two/{00000123,00000124}``, ``root/half_plus_three/00000123`` and ``root/models.config``."""
    root.mkdir(parents=True, exist_ok=True)
    for version in VERSION_DIRS:
        save_half_plus(root / HALF_PLUS_TWO / version, b=2.0)
    save_half_plus(root / HALF_PLUS_THREE / VERSION_DIRS[0], b=3.0)
    (root / "models.config").write_text(models_config_text(root))
    return root


@contextlib.contextmanager
def serve(root: Path, **overrides: Any) -> Iterator[Any]:
    """An ``EdgeServer`` serving ``root/models.config`` (REST and gRPC on free loopback ports)::

    with serve(build_tfserving_models(tmp)) as srv:
        httpx.post(srv.rest_url + "/v1/models/half_plus_two:predict", json={"instances": [2.0]})
    """
    from deepclf.serving import EdgeServer, ServerConfig
    from deepclf.serving.modelconfig import load_model_config_file

    options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "rest_api_port": 0, "threads": 2, "poll_seconds": 0}
    # models.config's labels are in the first config: TF Serving needs this flag to accept them at start-up
    options["allow_version_labels_for_unavailable_models"] = True
    options.update(overrides)
    cfg = ServerConfig(model_configs=load_model_config_file(root / "models.config"), **options)
    with EdgeServer(cfg) as srv:
        yield srv
