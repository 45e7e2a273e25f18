"""Transfer learning: a Keras applications backbone (MobileNetV3Small, EfficientNetB0) under a new classifier head.

The tutorial's next step. The backbone comes with weights (``imagenet``: Keras downloads them once into
``~/.keras/models``; or the path of a weights file, e.g. that same file fetched on another machine); training first
fits the head with the backbone frozen, then fine-tunes everything at a low learning rate (the recipe's phases,
``deepclf.train.models``). The backbone runs in inference mode throughout (``training=False``): its batch
normalization keeps the statistics it came with, as Keras' transfer-learning guide advises, so fine-tuning on a few
thousand photos does not wreck them.

Both applications take float32 0..255 like every deepclf model: they normalize inside (MobileNetV3's
``include_preprocessing``; EfficientNet's Rescaling + Normalization)::

    model = build_transfer_model("mobilenet_v3_small", 5, (224, 224), weights="imagenet")
    model = build_transfer_model("efficientnet_b0", 5, (224, 224), weights="efficientnetb0_notop.h5")
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepclf.errors import ModelFormatError, UsageError, require_tensorflow

IMAGENET = "imagenet"
#: The name of the backbone inside the built model (what the recipe's phases freeze and unfreeze).
BACKBONE_LAYER = "backbone"


@dataclass(frozen=True)
class Backbone:
    """A Keras application used as a backbone: its constructor and the weights file ``imagenet`` stands for."""

    name: str
    application: str  # attribute of keras.applications
    imagenet_file: str  # the file Keras downloads (include_top=False, 224x224), for the error message
    min_side: int = 32


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v3_small": Backbone(
        "mobilenet_v3_small",
        "MobileNetV3Small",
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    ),
    "efficientnet_b0": Backbone(
        "efficientnet_b0",
        "EfficientNetB0",
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
    ),
}

#: EfficientNet's ImageNet normalization (keras.applications.efficientnet).
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def check_weights(weights: str | None, model: str) -> str:
    """``imagenet`` or the path of an existing file; a ``UsageError`` saying what is accepted otherwise."""
    if weights is None or weights == "":
        raise UsageError(f"--model {model} needs --weights imagenet or --weights PATH (a backbone weights file)")
    if weights == IMAGENET:
        return weights
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UsageError(
            f"--weights {weights!r}: no such file; pass 'imagenet' (downloaded by Keras) or the path of a weights "
            f"file of the {model} backbone (.h5 or .weights.h5, without the ImageNet classifier top)"
        )
    if not path.name.endswith((".h5", ".hdf5", ".keras")):
        raise UsageError(f"--weights {weights!r}: expected a Keras weights file (.h5, .weights.h5 or .keras)")
    return str(path)


def build_backbone(name: str, img_size: tuple[int, int], weights: str | None):  # -> keras.Model
    """The application without its top, global-average pooled, with ``weights`` (``imagenet``, a path, or None for
    a random initialisation, which tests use to make weights files)."""
    tf = require_tensorflow("building a transfer-learning backbone")
    if name not in BACKBONES:
        raise UsageError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    h, w = img_size
    if min(h, w) < spec.min_side:
        raise UsageError(f"{name} needs an input of at least {spec.min_side}x{spec.min_side}, got {h}x{w}")
    app = getattr(tf.keras.applications, spec.application)
    try:
        with warnings.catch_warnings():
            # Keras warns that ImageNet weights were made at 224x224 whatever the input: true, and no problem for
            # convolutions; the recipe's size is 224 anyway.
            warnings.filterwarnings("ignore", message=r".*Weights for input shape \(224, 224\) will be loaded.*")
            # "imagenet": Keras downloads the file once into ~/.keras/models; a path: Keras' own loader reads it.
            backbone = app(include_top=False, input_shape=(h, w, 3), pooling="avg", weights=weights)
    except Exception as exc:  # Keras raises bare Exception/ValueError for both download and file problems
        raise _weights_error(spec, weights, exc) from exc
    backbone.name = BACKBONE_LAYER
    return backbone


def keras_models_dir() -> Path:
    """Where Keras keeps downloaded application weights (``$KERAS_HOME/models``, default ``~/.keras/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _weights_error(spec: Backbone, weights: str | None, exc: Exception) -> Exception:
    text = " ".join(str(exc).split())[:400] or type(exc).__name__
    if weights == IMAGENET:
        # Keras: "URL fetch failure on <url>: <code> -- <reason>"; the URL is named below, keep the reason
        reason = text.split(" -- ", 1)[1] if text.startswith("URL fetch failure") and " -- " in text else text
        return UsageError(
            f"could not download the ImageNet weights of {spec.name} ({reason}); where a network allows, download "
            f"{spec.imagenet_file} and pass --weights PATH_TO_IT, or put it in {keras_models_dir()}/"
        )
    return ModelFormatError(f"--weights {weights}: not a weights file of the {spec.name} backbone: {text}")


def build_transfer_model(
    name: str, num_classes: int, img_size: tuple[int, int] = (224, 224), *, weights: str | None, seed: int | None = None
):  # -> keras.Model
    """Input ``image`` float32 0..255 -> backbone (inference mode) -> Dropout(0.2) -> Dense logits."""
    tf = require_tensorflow("building a transfer-learning model")
    layers = tf.keras.layers
    backbone = build_backbone(name, img_size, weights)
    inputs = tf.keras.Input(shape=(*img_size, 3), name="image")
    x = inputs
    if name.startswith("efficientnet") and weights != IMAGENET:
        # Keras adds a correcting Rescaling(1/sqrt(stddev)) after its Normalization only when it loads "imagenet"
        # itself; the same pixels must reach the backbone whichever way its weights came, so the same correction
        # is applied here, to the input: x' = 255*mean + (x - 255*mean) / sqrt(stddev), per channel.
        inv = [1.0 / math.sqrt(s) for s in _IMAGENET_STDDEV_RGB]
        offset = [255.0 * m * (1.0 - k) for m, k in zip(_IMAGENET_MEAN_RGB, inv, strict=True)]
        x = layers.Rescaling(inv, offset=offset, name="imagenet_stddev_correction")(x)
    x = backbone(x, training=False)
    x = layers.Dropout(0.2, seed=seed)(x)
    outputs = layers.Dense(num_classes, name="logits", kernel_initializer=tf.keras.initializers.GlorotUniform(seed))(x)
    return tf.keras.Model(inputs, outputs, name=name)


def set_backbone_trainable(model: Any, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze the backbone of a model built by ``build_transfer_model``."""
    try:
        model.get_layer(BACKBONE_LAYER).trainable = trainable
    except ValueError:
        raise ModelFormatError(f"model {model.name!r} has no {BACKBONE_LAYER!r} layer to freeze") from None
