"""The model registry: the TF flowers tutorial's two CNNs, built by name.

``basic`` is the tutorial's first model (Rescaling 1/255, three Conv2D 16/32/64 3x3 'same' relu blocks each followed by
MaxPooling2D, Flatten, Dense 128 relu, Dense logits): 3,989,285 parameters at 180x180x3 and 5 classes.
``augmented`` is the same with RandomFlip("horizontal"), RandomRotation(0.1), RandomZoom(0.1) in front and
Dropout(0.2) before Flatten (the tutorial's answer to overfitting). Both output logits; training uses
``SparseCategoricalCrossentropy(from_logits=True)``::

    model = build_model("augmented", num_classes=5, img_size=(180, 180))
    compile_model(model)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from deepclf.errors import UsageError, require_tensorflow


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture and its training defaults."""

    name: str
    description: str
    default_epochs: int
    builder: Callable[..., object]


def data_augmentation(seed: int | None = None):  # -> keras.Sequential
    """The tutorial's augmentation block: random horizontal flip, rotation 0.1, zoom 0.1 (active in training only)."""
    tf = require_tensorflow("building the augmented model")
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.1, seed=seed),
            layers.RandomZoom(0.1, seed=seed),
        ],
        name="data_augmentation",
    )


def _conv_stack(x, layers):
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    return x


def _build(num_classes: int, img_size: tuple[int, int], *, augment: bool, seed: int | None, name: str):
    tf = require_tensorflow("building a model")
    layers = tf.keras.layers
    h, w = img_size
    inputs = tf.keras.Input(shape=(h, w, 3), name="image")
    x = data_augmentation(seed)(inputs) if augment else inputs
    x = layers.Rescaling(1.0 / 255)(x)
    x = _conv_stack(x, layers)
    if augment:
        x = layers.Dropout(0.2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def build_basic(num_classes: int, img_size: tuple[int, int] = (180, 180), seed: int | None = None):
    """The tutorial's basic CNN (no augmentation, no dropout)."""
    return _build(num_classes, img_size, augment=False, seed=seed, name="basic")


def build_augmented(num_classes: int, img_size: tuple[int, int] = (180, 180), seed: int | None = None):
    """The basic CNN with random flip/rotation/zoom in front and Dropout(0.2) before Flatten."""
    return _build(num_classes, img_size, augment=True, seed=seed, name="augmented")


MODELS: dict[str, ModelSpec] = {
    "basic": ModelSpec("basic", "3-conv CNN from the TF flowers tutorial", 10, build_basic),
    "augmented": ModelSpec(
        "augmented", "basic + RandomFlip/RandomRotation/RandomZoom and Dropout(0.2)", 15, build_augmented
    ),
}


def get_spec(name: str) -> ModelSpec:
    """The registered ``ModelSpec`` for ``name``, or a ``UsageError`` listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}") from None


def build_model(name: str, num_classes: int, img_size: tuple[int, int] = (180, 180), seed: int | None = None):
    """Build (not compile) a registered model; outputs logits."""
    if num_classes < 2:
        raise UsageError(f"a classifier needs at least 2 classes, got {num_classes}")
    return get_spec(name).builder(num_classes, tuple(img_size), seed)


def compile_model(model) -> None:
    """Adam, SparseCategoricalCrossentropy(from_logits=True), accuracy: the tutorial's settings."""
    tf = require_tensorflow("compiling a model")
    model.compile(
        optimizer="adam",
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
