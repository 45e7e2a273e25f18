"""Builds the models the convert and runtime tests share: a small real run folder and its converted version.

Both are built once per test session and cached under pytest's session temp folder, so every test package
(convert, runtime, serving, clients, bench) reuses the same conversion. The model is the registry's real ``basic``
CNN at 64x64, trained for a few epochs on the session's generated photos (tests/conftest.py ``gen_photos``: 5
classes named like the flowers, 40 each), so it exists on any machine, real photos or not. An untrained model's
near-uniform probabilities would make top-1 agreement meaningless; 5 epochs give a confident but not saturated
model (measured: ~92% validation accuracy, top probability 0.6-1.0, mean ~0.84; int8 differs from Keras by up to
~1.6e-2 in probability, as on the real photos), in ~5 s on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

IMG_SIZE = (64, 64)
EPOCHS = 5
MODEL_NAME = "flowers"


def make_run(run_dir: Path, data_dir: Path, img_size: tuple[int, int] = IMG_SIZE, epochs: int = EPOCHS) -> Path:
    """Train ``basic`` briefly on the training split of ``data_dir``; write model.keras, manifest.json, config.json."""
    import keras
    import numpy as np

    from deepclf.data.split import split_files
    from deepclf.fsutil import atomic_write_json
    from deepclf.manifest import InputSpec, Manifest
    from deepclf.preprocessing import preprocess_batch
    from deepclf.train.models import build_model, compile_model

    keras.utils.set_random_seed(0)
    files, labels, classes = split_files(data_dir, "training", validation_split=0.2, seed=123)
    x = preprocess_batch(files, img_size)
    y = np.asarray(labels, dtype=np.int64)
    model = build_model("basic", len(classes), img_size)
    compile_model(model)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.keras")
    Manifest(
        labels=list(classes),
        input=InputSpec(height=img_size[0], width=img_size[1]),
        name=MODEL_NAME,
        format="keras",
        architecture="basic",
        source={"data_dir": str(data_dir)},
    ).save(run_dir)
    atomic_write_json(
        run_dir / "config.json",
        {
            "data_dir": str(data_dir),
            "img_size": list(img_size),
            "batch_size": 32,
            "seed": 123,
            "validation_split": 0.2,
            "model": "basic",
            "epochs": epochs,
        },
    )
    return run_dir


def shared_run(base_temp: Path, data_dir: Path) -> Path:
    """The session's run folder (built on first use)."""
    run = base_temp / "deepclf-shared" / "run"
    if not (run / "config.json").is_file():
        make_run(run, data_dir)
    return run


def shared_version(base_temp: Path, data_dir: Path) -> Path:
    """The session's converted version folder ``models/flowers/1`` with all four TFLite variants."""
    from deepclf.convert.pipeline import ConvertOptions, convert_run

    models = base_temp / "deepclf-shared" / "models"
    version = models / MODEL_NAME / "1"
    if not (version / "conversion_report.json").is_file():
        run = shared_run(base_temp, data_dir)
        # 40 parity images (the whole validation split of the generated photos) keep the session fast.
        convert_run(
            run,
            models,
            ConvertOptions(version=1, parity_images=40, calibration_steps=50, min_agreement=0.8),
            log=lambda _msg: None,
        )
    return version


def report_of(version: Path) -> dict:
    return json.loads((version / "conversion_report.json").read_text())
