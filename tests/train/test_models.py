"""Both tutorial architectures: layer types, order and the parameter count the issue states."""

from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

from deepclf.errors import UsageError
from deepclf.train.models import MODELS, build_model, compile_model

BASIC_LAYERS = [
    "InputLayer",
    "Rescaling",
    "Conv2D",
    "MaxPooling2D",
    "Conv2D",
    "MaxPooling2D",
    "Conv2D",
    "MaxPooling2D",
    "Flatten",
    "Dense",
    "Dense",
]


def _types(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_basic_architecture_and_params() -> None:
    m = build_model("basic", 5, (180, 180))
    assert _types(m) == BASIC_LAYERS
    assert m.count_params() == 3_989_285
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [16, 32, 64]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert m.layers[-1].activation.__name__ == "linear"  # logits
    assert m.input_shape == (None, 180, 180, 3) and m.output_shape == (None, 5)


def test_augmented_architecture() -> None:
    m = build_model("augmented", 5, (180, 180))
    aug = m.get_layer("data_augmentation")
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip", "RandomRotation", "RandomZoom"]
    assert aug.layers[0].mode == "horizontal"
    types = _types(m)
    assert types[types.index("Flatten") - 1] == "Dropout"
    assert m.get_layer(index=types.index("Dropout")).rate == 0.2
    assert m.count_params() == 3_989_285  # augmentation and dropout add no weights


def test_defaults_and_compile() -> None:
    assert MODELS["basic"].default_epochs == 10 and MODELS["augmented"].default_epochs == 15
    m = build_model("basic", 3, (32, 32))
    compile_model(m)
    assert type(m.optimizer).__name__ == "Adam"
    assert m.loss.get_config()["from_logits"] is True


def test_unknown_model_and_bad_classes() -> None:
    with pytest.raises(UsageError, match=r"unknown model 'resnet'.*augmented, basic"):
        build_model("resnet", 5)
    with pytest.raises(UsageError, match="at least 2 classes"):
        build_model("basic", 1)
