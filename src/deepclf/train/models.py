"""The model registry: every architecture ``deepclf train --model`` knows, built by name, with its training recipe.

``basic`` is the tutorial's first model (Rescaling 1/255, three Conv2D 16/32/64 3x3 'same' relu blocks each followed by
MaxPooling2D, Flatten, Dense 128 relu, Dense logits): 3,989,285 parameters at 180x180x3 and 5 classes.
``augmented`` is the same with RandomFlip("horizontal"), RandomRotation(0.1), RandomZoom(0.1) in front and
Dropout(0.2) before Flatten (the tutorial's answer to overfitting). Both output logits; training uses
``SparseCategoricalCrossentropy(from_logits=True)``::

    model = build_model("augmented", num_classes=5, img_size=(180, 180))
    compile_model(model)

``edge`` (``deepclf.train.edge``) is the CNN worth deploying: trained from scratch with its own recipe (input size,
batch, AdamW with warm-up and cosine decay, label smoothing, an augmentation policy run in the input pipeline)::

    spec = get_spec("edge")
    model = build_model("edge", 5, spec.recipe.img_size)
    compile_model(model, spec.recipe, steps_per_epoch=41, epochs=spec.recipe.epochs)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deepclf.errors import UsageError, require_tensorflow
from deepclf.train.augment import AugmentPolicy


@dataclass(frozen=True)
class Phase:
    """One stage of a multi-stage recipe: ``epochs`` at ``learning_rate``, the backbone frozen or trainable."""

    epochs: int
    learning_rate: float
    backbone_trainable: bool


@dataclass(frozen=True)
class Recipe:
    """How a registered model is trained when no flag says otherwise (``deepclf train --model NAME`` alone).

    The tutorial's recipe is the default: Adam at a constant 1e-3, plain cross-entropy, 180x180, batch 32, no
    augmentation in the input pipeline (the augmented CNN carries its own Keras layers). ``augment`` set: training
    images are cached at ``cache_scale`` times the input size as uint8 and the policy draws a new view of each one
    every epoch (``deepclf.train.augment``); the validation images always go through the inference contract.
    """

    epochs: int
    img_size: tuple[int, int] = (180, 180)
    batch_size: int = 32
    optimizer: str = "adam"  # "adam" (constant rate) or "adamw" (warm-up then cosine decay to 0)
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: AugmentPolicy | None = None
    cache_scale: float = 1.0
    phases: tuple[Phase, ...] = ()  # transfer learning: head first (backbone frozen), then everything

    def phase_plan(self, epochs: int) -> list[tuple[Phase | None, int, int]]:
        """``(phase, first epoch, end epoch)`` for a run of ``epochs`` epochs; one ``None`` phase without phases.

        A run of another length than the recipe's keeps the phases' proportions (the first phase gets at least one
        epoch; a phase left with none is dropped)::

            Recipe(10, phases=(Phase(5, 1e-3, False), Phase(5, 1e-5, True))).phase_plan(4)   # 2 + 2 epochs
        """
        if not self.phases:
            return [(None, 0, epochs)]
        total = sum(p.epochs for p in self.phases)
        plan: list[tuple[Phase | None, int, int]] = []
        start = 0
        for i, phase in enumerate(self.phases):
            if i == len(self.phases) - 1:
                n = epochs - start
            else:
                n = min(epochs - start, max(1 if i == 0 else 0, round(epochs * phase.epochs / total)))
            if n > 0:
                plan.append((phase, start, start + n))
                start += n
        return plan

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "img_size": list(self.img_size),
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_epochs,
            "label_smoothing": self.label_smoothing,
            "augment": self.augment.to_dict() if self.augment else None,
            "cache_scale": self.cache_scale,
            "phases": [
                {"epochs": p.epochs, "learning_rate": p.learning_rate, "backbone_trainable": p.backbone_trainable}
                for p in self.phases
            ],
        }


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture and its training recipe."""

    name: str
    description: str
    builder: Callable[..., object] | None
    recipe: Recipe = field(default_factory=lambda: Recipe(epochs=10))
    transfer: bool = False  # a Keras applications backbone that needs --weights

    @property
    def default_epochs(self) -> int:
        return self.recipe.epochs


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


def build_edge(num_classes: int, img_size: tuple[int, int] = (112, 112), seed: int | None = None):
    """The edge CNN (``deepclf.train.edge``)."""
    from deepclf.train.edge import build_edge_cnn

    return build_edge_cnn(num_classes, img_size, seed=seed)


#: The edge model's default schedule, chosen by measurement on the flowers photos within 25 minutes of training on 2
#: CPU cores (docs/results/2026-12-07-edge-model.md): 112x112 (as accurate as 128x128 here, 25% less compute),
#: batch 32 (twice the updates of 64 per epoch, at the same cost per image), crops of 35-100% of the area and
#: milder colour jitter than AugmentPolicy's defaults (with 30 epochs the network underfits, not overfits).
EDGE_RECIPE = Recipe(
    epochs=30,
    img_size=(112, 112),
    batch_size=32,
    optimizer="adamw",
    learning_rate=2e-3,
    weight_decay=0.05,
    warmup_epochs=2,
    label_smoothing=0.1,
    augment=AugmentPolicy(scale=(0.35, 1.0), brightness=0.15, contrast=0.15, saturation=0.225),
    cache_scale=144 / 112,
)

#: Transfer learning (``deepclf.train.transfer``): the head alone for 5 epochs, then everything at a 100x lower
#: rate, as in TensorFlow's transfer-learning tutorial; 224x224, the backbones' ImageNet size.
TRANSFER_RECIPE = Recipe(
    epochs=10,
    img_size=(224, 224),
    batch_size=32,
    optimizer="adam",
    learning_rate=1e-3,
    label_smoothing=0.1,
    augment=AugmentPolicy(scale=(0.5, 1.0)),
    cache_scale=1.125,
    phases=(Phase(5, 1e-3, backbone_trainable=False), Phase(5, 1e-5, backbone_trainable=True)),
)

MODELS: dict[str, ModelSpec] = {
    "basic": ModelSpec("basic", "3-conv CNN from the TF flowers tutorial", build_basic, Recipe(epochs=10)),
    "augmented": ModelSpec(
        "augmented", "basic + RandomFlip/RandomRotation/RandomZoom and Dropout(0.2)", build_augmented, Recipe(epochs=15)
    ),
    "edge": ModelSpec(
        "edge",
        "CNN for devices: fused and depthwise inverted residuals with batch normalization, trained from scratch",
        build_edge,
        EDGE_RECIPE,
    ),
    "mobilenet_v3_small": ModelSpec(
        "mobilenet_v3_small",
        "Keras MobileNetV3Small backbone (--weights imagenet|PATH), head then fine-tuning",
        None,
        TRANSFER_RECIPE,
        transfer=True,
    ),
    "efficientnet_b0": ModelSpec(
        "efficientnet_b0",
        "Keras EfficientNetB0 backbone (--weights imagenet|PATH), head then fine-tuning",
        None,
        TRANSFER_RECIPE,
        transfer=True,
    ),
}


def get_spec(name: str) -> ModelSpec:
    """The registered ``ModelSpec`` for ``name``, or a ``UsageError`` listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}") from None


def build_model(
    name: str,
    num_classes: int,
    img_size: tuple[int, int] = (180, 180),
    seed: int | None = None,
    *,
    weights: str | None = None,
):
    """Build (not compile) a registered model; outputs logits. ``weights`` (``imagenet`` or a file) is for the
    transfer-learning models, which need it, and refused for the others, which train from scratch."""
    if num_classes < 2:
        raise UsageError(f"a classifier needs at least 2 classes, got {num_classes}")
    spec = get_spec(name)
    if spec.transfer:
        from deepclf.train.transfer import build_transfer_model, check_weights

        size = (int(img_size[0]), int(img_size[1]))
        return build_transfer_model(name, num_classes, size, weights=check_weights(weights, name), seed=seed)
    if weights is not None:
        transfer = ", ".join(n for n, s in MODELS.items() if s.transfer)
        raise UsageError(f"--weights is for the transfer-learning models ({transfer}); {name} trains from scratch")
    assert spec.builder is not None  # every model trained from scratch has one
    return spec.builder(num_classes, tuple(img_size), seed)


def compile_model(
    model,
    recipe: Recipe | None = None,
    *,
    steps_per_epoch: int | None = None,
    epochs: int | None = None,
    learning_rate: float | None = None,
) -> None:
    """Compile for ``recipe`` (default: the tutorial's Adam, SparseCategoricalCrossentropy(from_logits=True),
    accuracy). An ``adamw`` recipe needs ``steps_per_epoch`` and ``epochs``: its learning rate warms up linearly
    for ``warmup_epochs`` and then follows a cosine to 0 at the last step; the schedule is a function of the
    optimizer's step counter, which checkpoints hold, so a resumed run continues on the same curve."""
    tf = require_tensorflow("compiling a model")
    recipe = recipe or Recipe(epochs=10)
    if recipe.optimizer == "adam":  # ``learning_rate``: a phase's own rate
        optimizer: Any = tf.keras.optimizers.Adam(learning_rate or recipe.learning_rate)
    elif recipe.optimizer == "adamw":
        if not steps_per_epoch or not epochs:
            raise UsageError("the adamw recipe needs steps_per_epoch and epochs for its learning-rate schedule")
        total = steps_per_epoch * epochs
        warmup = min(round(recipe.warmup_epochs * steps_per_epoch), total - 1)
        schedule = tf.keras.optimizers.schedules.CosineDecay(
            0.0, total - warmup, alpha=0.0, warmup_target=recipe.learning_rate, warmup_steps=warmup
        )
        optimizer = tf.keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay)
    else:
        raise UsageError(f"unknown optimizer {recipe.optimizer!r} in the training recipe; expected adam or adamw")
    if recipe.label_smoothing:
        from deepclf.train.losses import SmoothedSparseCrossentropy

        loss: Any = SmoothedSparseCrossentropy(recipe.label_smoothing)
    else:
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
