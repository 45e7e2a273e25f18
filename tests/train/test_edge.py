"""The edge model: its architecture, its augmentation policy (in the input pipeline, never in the model), its loss
and recipe, and a short real training run that is interrupted and resumed on the recipe's schedule.

Training runs on the session's generated photos at a small input size: what is tested is the code, which any machine
can run; the accuracy on the real photos is measured by ``benchmarks/models.py`` (README's model table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf: Any = pytest.importorskip("tensorflow")

from deepclf.errors import UsageError
from deepclf.manifest import Manifest
from deepclf.train.augment import AugmentPolicy
from deepclf.train.models import EDGE_RECIPE, MODELS, Phase, Recipe, build_model, compile_model
from deepclf.train.trainer import TrainConfig, train

NO_AUGMENT = AugmentPolicy(
    scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, rotation=0.0, brightness=0.0, contrast=0.0, saturation=0.0
)


def _photo(size: tuple[int, int] = (72, 88)) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    img = np.stack([x * 255 / size[1], y * 255 / size[0], (x + y) % 64 * 4], axis=-1)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def test_edge_architecture_is_conv_batchnorm_relu_without_biases_or_augmentation() -> None:
    m = build_model("edge", 5, (112, 112))
    assert m.input_shape == (None, 112, 112, 3) and m.output_shape == (None, 5)
    assert m.count_params() == 1_132_277
    types = [type(layer).__name__ for layer in m.layers]
    assert not [t for t in types if t.startswith("Random")]  # augmentation lives in the input pipeline
    assert types[1] == "Rescaling" and types[-1] == "Dense" and m.layers[-1].activation.__name__ == "linear"
    convs = [layer for layer in m.layers if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D")]
    assert len(convs) == 32
    for conv in convs:  # each convolution feeds a batch normalization and has no bias of its own: BN folds into it
        assert not conv.use_bias, conv.name
        (consumer,) = [n.operation for n in conv._outbound_nodes]
        assert type(consumer).__name__ == "BatchNormalization", conv.name
    assert {type(layer).__name__ for layer in m.layers} <= {
        "InputLayer",
        "Rescaling",
        "Conv2D",
        "DepthwiseConv2D",
        "BatchNormalization",
        "ReLU",
        "Add",
        "GlobalAveragePooling2D",
        "Dropout",
        "Dense",
    }
    with pytest.raises(UsageError, match="at least 32x32"):
        build_model("edge", 5, (24, 24))


def test_edge_recipe_is_what_default_flags_train() -> None:
    cfg = TrainConfig(model="edge", data_dir="d", run_dir="r").resolved()
    assert (cfg.epochs, cfg.img_size, cfg.batch_size) == (30, (112, 112), 32)
    assert MODELS["edge"].default_epochs == EDGE_RECIPE.epochs
    basic = TrainConfig(model="basic", data_dir="d", run_dir="r").resolved()
    assert (basic.epochs, basic.img_size, basic.batch_size) == (10, (180, 180), 32)  # the tutorial's, unchanged
    m = build_model("edge", 5, (64, 64))
    compile_model(m, EDGE_RECIPE, steps_per_epoch=10, epochs=3)
    assert type(m.optimizer).__name__ == "AdamW" and m.optimizer.weight_decay == pytest.approx(0.05)
    peak = EDGE_RECIPE.learning_rate
    lr = m.optimizer._learning_rate  # the schedule; warm-up (2 epochs = 20 steps) to the peak, then a cosine down to 0
    assert float(lr(0)) == 0.0 and float(lr(20)) == pytest.approx(peak) and float(lr(30)) == pytest.approx(0.0)
    assert float(lr(10)) == pytest.approx(peak / 2) and float(lr(25)) == pytest.approx(peak / 2, rel=1e-3)
    with pytest.raises(UsageError, match="needs steps_per_epoch"):
        compile_model(m, EDGE_RECIPE)


def test_phase_plan_keeps_the_proportions() -> None:
    r = Recipe(10, phases=(Phase(5, 1e-3, False), Phase(5, 1e-5, True)))
    assert [(b, e) for _, b, e in r.phase_plan(10)] == [(0, 5), (5, 10)]
    assert [(b, e) for _, b, e in r.phase_plan(4)] == [(0, 2), (2, 4)]
    assert [(p.backbone_trainable, b, e) for p, b, e in r.phase_plan(1)] == [(False, 0, 1)]  # type: ignore[union-attr]
    assert Recipe(7).phase_plan(7) == [(None, 0, 7)]


def test_smoothed_loss_is_keras_crossentropy_on_smoothed_one_hot_and_reloads(tmp_path: Path) -> None:
    from deepclf.train.losses import SmoothedSparseCrossentropy

    logits = tf.constant([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    labels = tf.constant([0, 1])
    ours = SmoothedSparseCrossentropy(0.1)(labels, logits)
    ref = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(tf.one_hot(labels, 3), logits)
    assert float(ours) == pytest.approx(float(ref), rel=1e-6)
    assert float(SmoothedSparseCrossentropy(0.0)(labels, logits)) == pytest.approx(
        float(tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)), rel=1e-6
    )
    m = build_model("edge", 3, (32, 32))
    compile_model(m, EDGE_RECIPE, steps_per_epoch=5, epochs=2)
    m.save(tmp_path / "m.keras")
    again = tf.keras.models.load_model(tmp_path / "m.keras")  # compiles again: loss and schedule are registered
    assert again.loss.get_config()["smoothing"] == pytest.approx(0.1)


def test_augmentation_switched_off_is_the_contract_resize() -> None:
    photo = _photo()
    out = NO_AUGMENT.batch_fn((40, 48))(photo[None], tf.constant([1, 2]))[0].numpy()
    ref = tf.image.resize(tf.cast(photo, tf.float32), (40, 48), method="bilinear").numpy()
    assert out.shape == (40, 48, 3) and out.dtype == np.float32
    assert (
        np.abs(out - ref).max() < 5e-3
    )  # of 255 (a half-pixel shift costs tens); the projective transform's identity is TF's half-pixel bilinear


def test_augmentation_draws_new_views_from_the_seed_and_stays_in_range() -> None:
    batch = np.repeat(_photo()[None], 8, axis=0)
    f = AugmentPolicy().batch_fn((32, 32))
    a = f(batch, tf.constant([3, 4])).numpy()
    assert a.shape == (8, 32, 32, 3) and a.min() >= 0 and a.max() <= 255
    assert np.array_equal(a, f(batch, tf.constant([3, 4])).numpy())  # a pure function of images and seed
    assert not np.allclose(a, f(batch, tf.constant([3, 5])).numpy())
    assert len({a[i].tobytes() for i in range(8)}) == 8  # every image of the batch gets its own view
    # Flip alone: every image is either the resized photo or its mirror, and both occur.
    flip = AugmentPolicy(
        scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True, rotation=0.0, brightness=0.0, contrast=0.0, saturation=0.0
    )
    views = flip.batch_fn((32, 32))(batch, tf.constant([7, 7])).numpy()
    plain = NO_AUGMENT.batch_fn((32, 32))(batch[:1], tf.constant([0, 0])).numpy()[0]
    mirrored = [bool(np.abs(v - plain[:, ::-1]).max() < 1e-3) for v in views]
    same = [bool(np.abs(v - plain).max() < 1e-3) for v in views]
    assert all(m != s for m, s in zip(mirrored, same, strict=True)) and any(mirrored) and any(same)


def test_bad_policy_values_are_refused() -> None:
    with pytest.raises(UsageError, match="crop scale"):
        AugmentPolicy(scale=(0.0, 1.0))
    with pytest.raises(UsageError, match="rotation must be in"):
        AugmentPolicy(rotation=1.5)


class _Interrupt(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated interruption after epoch 1")


def test_edge_run_trains_on_the_recipe_resumes_and_exports_no_augmentation(gen_photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "edge"
    cfg = TrainConfig(
        model="edge", data_dir=str(gen_photos), run_dir=str(run), epochs=2, img_size=(32, 32), batch_size=16
    )
    with pytest.raises(KeyboardInterrupt):
        train(cfg, log=lambda s: None, verbose=0, extra_callbacks=[_Interrupt()])
    lines: list[str] = []
    res = train(cfg, log=lines.append, verbose=0)
    assert res.resumed_from_epoch == 1 and any("resuming the interrupted run" in line for line in lines)
    assert len(res.history["accuracy"]) == 2
    for name in ("model.keras", "manifest.json", "metrics.json", "plots/augmentation.png", "plots/samples.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["batch_size"] == 16 and config["recipe"]["optimizer"] == "adamw"
    assert config["recipe"]["augment"]["scale"] == [0.35, 1.0]
    m = Manifest.load(run)
    assert m.architecture == "edge" and m.input.size == (32, 32)
    model = tf.keras.models.load_model(run / "model.keras", compile=False)
    assert not [layer for layer in model.layers if type(layer).__name__.startswith("Random")]
    # The schedule continued across the interruption: 10 steps per epoch (160 photos, whole batches of 16) for 2
    # epochs, and the cosine ends at 0.
    opt = tf.keras.models.load_model(run / "model.keras").optimizer
    assert int(opt.iterations) == 20
    assert float(opt.learning_rate) == pytest.approx(0.0, abs=1e-9)
    metrics = json.loads((run / "metrics.json").read_text())
    assert sum(map(sum, metrics["confusion_matrix"])) == 40  # validation keeps every image (no dropped batch)


def test_a_batch_larger_than_the_training_split_is_refused(gen_photos: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        model="edge", data_dir=str(gen_photos), run_dir=str(tmp_path / "r"), epochs=1, img_size=(32, 32), batch_size=512
    )
    with pytest.raises(UsageError, match="--batch-size 512 is larger than the training split"):
        train(cfg, log=lambda s: None, verbose=0)


def test_no_two_layers_start_from_the_same_kernel() -> None:
    # A Keras 3 initializer seeded with an int draws the same values at every call: shared across layers, it made
    # every block of a stage start as a copy of the block before it.
    m = build_model("edge", 5, (64, 64), seed=123)
    kernels = [w.numpy() for layer in m.layers for w in layer.weights if w.path.endswith("kernel")]
    same_shape = [(a, b) for i, a in enumerate(kernels) for b in kernels[i + 1 :] if a.shape == b.shape]
    assert len(same_shape) >= 6  # the repeated blocks of the stages
    assert not [1 for a, b in same_shape if np.array_equal(a, b)]
    again = build_model("edge", 5, (64, 64), seed=123)  # and still a function of the seed
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(m.weights, again.weights, strict=True))
