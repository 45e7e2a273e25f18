"""Shared fixtures: generated flower-like photos and the session's model trained on them, the real photos (for the
few tests whose point is real photos), small generated image folders, quiet TensorFlow, and a skip count printed
at the end of every run.

Every test that needs only *a* trained model or *some* JPEGs uses generated data (``gen_photos``), so the suite
runs in full on any machine. ``mini_photos`` / ``full_photos`` (the real flowers) skip, saying why, without the
shared data.

Where TensorFlow cannot be installed (the arm64 root of ``make test-arm64``: ``[edge]`` only), the session's
photos and models come ready-made from ``DEEPCLF_TEST_PREBUILT`` (written by ``tests/prebuilt.py`` on a machine
with TensorFlow), and what needs TensorFlow itself (the Keras run folder, TF Serving's SavedModels) skips, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .prebuilt import prebuilt_dir, require_tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")

#: ``DEEPCLF_TEST_DATA`` values that mean "no shared data here": run as a fresh clone without ../shared would.
NO_DATA = frozenset({"none", "no", "off", "0"})


def shared_data_dir() -> Path | None:
    """The folder holding flower_photos/ and flower_photos_mini/, or None.

    ``DEEPCLF_TEST_DATA`` set: that folder and nothing else (``none``, or a folder without ``flower_photos_mini``,
    means no real photos; ``../shared`` is not consulted then). Unset: ``../shared/data`` beside the checkout.
    """
    env = os.environ.get("DEEPCLF_TEST_DATA", "").strip()
    if env.lower() in NO_DATA:
        return None
    cand = Path(env) if env else REPO.parent / "shared" / "data"
    return cand if (cand / "flower_photos_mini").is_dir() else None


def _no_photos(what: str) -> str:
    """The skip reason: which folder was looked for, where, and how to provide it."""
    env = os.environ.get("DEEPCLF_TEST_DATA", "").strip()
    if env.lower() in NO_DATA:
        where = f"DEEPCLF_TEST_DATA={env} says there is no shared data"
    elif env:
        where = f"DEEPCLF_TEST_DATA={env!r} has no {what}/"
    else:
        where = f"{REPO.parent / 'shared' / 'data' / what} is absent"
    return (
        f"needs the real {what} ({where}): set DEEPCLF_TEST_DATA to the folder holding it, "
        "or put shared/data beside the checkout"
    )


@pytest.fixture(scope="session")
def mini_photos() -> Path:
    """The 200-photo real subset (40 per class); skips, saying why, when the shared data is absent.

    Only for tests whose point is real photos; every other test uses ``gen_photos``.
    """
    d = shared_data_dir()
    if d is None:
        pytest.skip(_no_photos("flower_photos_mini"))
    return d / "flower_photos_mini"


@pytest.fixture(scope="session")
def full_photos() -> Path:
    """The full real flowers folder (3,304 photos when complete)."""
    d = shared_data_dir()
    if d is None or not (d / "flower_photos").is_dir():
        pytest.skip(_no_photos("flower_photos"))
    return d / "flower_photos"


#: The generated stand-in for the mini photos: as many images (so the same 160/40 split), the same 5 class names.
GEN_PER_CLASS = 40
GEN_SIZE = (120, 160)  # (height, width): larger than the 64x64 model input, so every path really resizes


@pytest.fixture(scope="session")
def gen_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 generated JPEGs, 40 per class, in class folders named like the flowers (``deepclf.data.synthetic``).

    Built once per session (well under a second); a CNN learns them in a few epochs. Shared: copy, never modify.
    With ``DEEPCLF_TEST_PREBUILT``, the ones the prebuilt model was trained on.
    """
    prebuilt = prebuilt_dir()
    if prebuilt is not None:
        return prebuilt / "gen_photos"
    from deepclf.data.synthetic import make_synthetic_dataset

    root = make_synthetic_dataset(
        tmp_path_factory.getbasetemp() / "deepclf-shared" / "gen_photos", per_class=GEN_PER_CLASS, size=GEN_SIZE, seed=0
    )
    assert tuple(sorted(p.name for p in root.iterdir())) == CLASSES
    return root


def make_image_folder(root: Path, classes=("a", "b", "c"), per_class: int = 6, size=(40, 48), seed: int = 0) -> Path:
    """A folder of class sub-folders with small random JPEGs whose colour depends on the class."""
    rng = np.random.default_rng(seed)
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((*size, 3), dtype=np.float32)
            base[..., ci % 3] = 180
            arr = np.clip(base + rng.normal(0, 40, (*size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{c}_{i:03d}.jpg", quality=90)
    return root


@pytest.fixture()
def tiny_folder(tmp_path: Path) -> Path:
    """3 classes x 6 generated JPEGs."""
    return make_image_folder(tmp_path / "tiny")


def _modelkit():
    import sys

    sys.path.insert(0, str(REPO / "tests" / "convert"))
    import modelkit  # tests/convert/modelkit.py: builds and caches the session's trained run + conversion

    return modelkit


@pytest.fixture(scope="session")
def shared_run_dir(tmp_path_factory: pytest.TempPathFactory, gen_photos: Path) -> Path:
    """A real training run folder (basic CNN, 64x64, trained briefly on ``gen_photos``), built once per session."""
    require_tensorflow("the Keras run folder is trained and loaded with TensorFlow")
    return _modelkit().shared_run(tmp_path_factory.getbasetemp(), gen_photos)


@pytest.fixture(scope="session")
def shared_version_dir(tmp_path_factory: pytest.TempPathFactory, gen_photos: Path) -> Path:
    """``<models>/flowers/1`` converted from ``shared_run_dir``: SavedModel + 4 TFLite variants + manifest.

    The model base path is ``shared_version_dir.parent``; copy it before modifying (other tests share it).
    With ``DEEPCLF_TEST_PREBUILT``, the prebuilt copy of it.
    """
    prebuilt = prebuilt_dir()
    if prebuilt is not None:
        return prebuilt / "models" / "flowers" / "1"
    return _modelkit().shared_version(tmp_path_factory.getbasetemp(), gen_photos)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``tests/arm64/`` runs in an emulated arm64 root (root, binfmt_misc, minutes): collected only when the run
    selects it by marker, as ``make test-arm64`` does (``-m arm64``); ``make test`` never sees it."""
    if collection_path == REPO / "tests" / "arm64" and "arm64" not in (config.option.markexpr or ""):
        return True
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """``skipped: N of M tests (x.x%)`` after every run, so the share of tests that did not run is plain to see."""
    outcomes = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
    ids = {o: {r.nodeid for r in terminalreporter.stats.get(o, []) if getattr(r, "nodeid", None)} for o in outcomes}
    total = len(set().union(*ids.values()))
    if total:
        n = len(ids["skipped"])
        terminalreporter.write_line(f"skipped: {n} of {total} tests ({100 * n / total:.1f}%)")


@pytest.fixture(scope="session")
def tfserving_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TF Serving's test models built with TensorFlow (tests/tfserving_models.py): ``half_plus_two`` (TF1
    SavedModel, versions ``00000123`` and ``00000124``) and ``half_plus_three`` (``00000123``) under the returned
    root, with ``models.config`` serving both (half_plus_two labelled stable -> 123, canary -> 124).

    Shared by the session: copy it before modifying.
    """
    require_tensorflow("TF Serving's test models are SavedModels built with TensorFlow")
    from .tfserving_models import build_tfserving_models

    return build_tfserving_models(tmp_path_factory.mktemp("tfserving_models"))
