"""Session fixtures for the convert tests: one trained run folder and one full conversion (see modelkit.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test_convert_full_size imports modelkit.make_run


@pytest.fixture(scope="session")
def run_dir(shared_run_dir: Path) -> Path:
    """A real training run folder: basic CNN at 64x64, trained 5 epochs on the generated photos' training split."""
    return shared_run_dir


@pytest.fixture(scope="session")
def version_dir(shared_version_dir: Path) -> Path:
    """``models/flowers/1`` converted from ``run_dir``: SavedModel, 4 TFLite variants, warmup, report."""
    return shared_version_dir


@pytest.fixture(scope="session")
def validation_files(gen_photos: Path) -> list[Path]:
    """The 40 validation JPEGs of the generated photos the model was trained on (Keras' split, seed 123)."""
    from deepclf.data.split import split_files

    return split_files(gen_photos, "validation", validation_split=0.2, seed=123)[0]


@pytest.fixture(scope="session")
def keras_reference(run_dir: Path, validation_files: list[Path]):
    """(images, Keras softmax probabilities) on the validation files: the reference every format is held to."""
    import numpy as np

    from deepclf.manifest import Manifest
    from deepclf.preprocessing import preprocess_batch
    from deepclf.runtime.tf_runners import KerasRunner

    manifest = Manifest.load(run_dir)
    x = preprocess_batch(validation_files, manifest.input)
    with KerasRunner(run_dir) as r:
        probs = r.predict(x)
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    return x, probs
