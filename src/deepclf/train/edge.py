"""The edge CNN: a small inverted-residual network in the EfficientNetV2 / MobileNetV2 family, built from Keras'
own layers only (so ``model.keras`` loads anywhere, and every layer has a TFLite builtin).

Layout (``STAGES``): a strided 3x3 stem, then stages of *fused* inverted residuals at high resolution (a 3x3
convolution that expands, a 1x1 that projects: cheaper than depthwise on CPUs while channels are few) and
*depthwise* inverted residuals at low resolution (1x1 expand, 3x3 depthwise, 1x1 project), a 1x1 head, global
average pooling, dropout and the logits. Every convolution is followed by batch normalization and has no bias, so
conversion folds each normalization into its convolution's weights and bias (the int8 graph holds no separate
MUL/ADD for it: ``deepclf.convert`` checks); residual additions join blocks whose input and output shapes match.
ReLU everywhere: its unbounded-above, zero-floored range quantizes well, and it fuses into the int8 kernels.

The input is float32 0..255, as for every deepclf model; a ``Rescaling`` layer maps it to -1..1 inside::

    model = build_edge_cnn(num_classes=5, img_size=(112, 112))
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

from deepclf.errors import UsageError, require_tensorflow


class Stage(NamedTuple):
    """``repeats`` blocks of one kind; the first has stride ``stride`` (a stage that halves the resolution)."""

    block: str  # "fused" or "depthwise"
    expansion: int
    channels: int
    repeats: int
    stride: int


STEM_CHANNELS = 16
STAGES: tuple[Stage, ...] = (
    Stage("fused", 1, 16, 1, 1),
    Stage("fused", 4, 24, 2, 2),
    Stage("fused", 4, 40, 2, 2),
    Stage("depthwise", 4, 80, 3, 2),
    Stage("depthwise", 6, 112, 2, 1),
    Stage("depthwise", 6, 160, 2, 2),
)
HEAD_CHANNELS = 512
DROPOUT = 0.2
#: Keras' default (0.99) averages the batch statistics over ~100 steps: a short schedule's validation would judge
#: stale averages in its first epochs. 0.9 follows the weights within ~10 steps and is as stable by the end.
BN_MOMENTUM = 0.9
#: The stem and four stages halve the resolution five times: 112 -> 4 (rounded up).
MIN_SIDE = 32


def build_edge_cnn(
    num_classes: int,
    img_size: tuple[int, int] = (112, 112),
    *,
    stages: tuple[Stage, ...] = STAGES,
    stem: int = STEM_CHANNELS,
    head: int = HEAD_CHANNELS,
    dropout: float = DROPOUT,
    seed: int | None = None,
    name: str = "edge",
):  # -> keras.Model
    """Build (not compile) the edge CNN: input ``image`` float32 [batch, H, W, 3] in 0..255, output logits."""
    tf = require_tensorflow("building the edge model")
    layers = tf.keras.layers
    h, w = img_size
    if min(h, w) < MIN_SIDE:
        raise UsageError(f"the edge model needs an input of at least {MIN_SIDE}x{MIN_SIDE}, got {h}x{w}")
    # One initializer per layer, each with its own seed: a Keras 3 initializer seeded with an int draws the same
    # values at every call, so a shared one started every block of a stage as a copy of the one before it.
    # Glorot-uniform, Keras' default, as in the runs the recipe was chosen with: behind batch normalization a
    # kernel's scale does not change what it computes, but it sets how far each AdamW step moves it relative to its
    # size, and He-normal's ~2x larger kernels trained visibly slower on this schedule (0.78 against 0.82).
    layer_seeds = itertools.count(seed) if seed is not None else itertools.repeat(None)

    def init() -> Any:
        return tf.keras.initializers.GlorotUniform(seed=next(layer_seeds))

    def conv_bn(x: Any, filters: int, kernel: int, stride: int = 1, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, kernel_initializer=init())(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        return layers.ReLU()(x) if relu else x

    def depthwise_bn(x: Any, stride: int) -> Any:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, depthwise_initializer=init())(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        return layers.ReLU()(x)

    def block(x: Any, kind: str, expansion: int, filters: int, stride: int) -> Any:
        channels = x.shape[-1]
        if kind == "fused":
            if expansion == 1:
                y = conv_bn(x, filters, 3, stride)
            else:
                y = conv_bn(conv_bn(x, channels * expansion, 3, stride), filters, 1, relu=False)
        elif kind == "depthwise":
            y = conv_bn(x, channels * expansion, 1) if expansion != 1 else x
            y = conv_bn(depthwise_bn(y, stride), filters, 1, relu=False)
        else:
            raise UsageError(f"unknown block kind {kind!r}; expected fused or depthwise")
        return layers.Add()([x, y]) if stride == 1 and channels == filters else y

    inputs = tf.keras.Input(shape=(h, w, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = conv_bn(x, stem, 3, 2)
    for stage in stages:
        for i in range(stage.repeats):
            x = block(x, stage.block, stage.expansion, stage.channels, stage.stride if i == 0 else 1)
    if head:
        x = conv_bn(x, head, 1)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = layers.Dropout(dropout, seed=seed)(x)
    outputs = layers.Dense(num_classes, name="logits", kernel_initializer=tf.keras.initializers.GlorotUniform(seed))(x)
    return tf.keras.Model(inputs, outputs, name=name)
