"""A short real training run writes every artifact; an interrupted run resumes; bad data is refused.

The images are the session's generated photos (5 flower-named classes, 40 each: the same 160/40 split as the real
mini set): what is tested is the trainer, which any machine can run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

tf: Any = pytest.importorskip("tensorflow")

from deepclf.errors import DatasetError, UsageError
from deepclf.manifest import Manifest
from deepclf.train.trainer import TrainConfig, train

ARTIFACTS = [
    "model.keras",
    "manifest.json",
    "config.json",
    "history.json",
    "history.csv",
    "metrics.json",
    "plots/curves.png",
    "plots/samples.png",
    "plots/augmentation.png",
    "plots/confusion_matrix.png",
]


def _cfg(data: Path, run: Path, **kw) -> TrainConfig:
    return TrainConfig(
        model=kw.pop("model", "augmented"),
        data_dir=str(data),
        run_dir=str(run),
        epochs=kw.pop("epochs", 2),
        img_size=(48, 48),
        batch_size=32,
        **kw,
    )


def test_short_run_writes_every_artifact(gen_photos: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    res = train(_cfg(gen_photos, tmp_path / "run"), log=lines.append, verbose=0)
    for a in ARTIFACTS:
        p = res.run_dir / a
        assert p.is_file() and p.stat().st_size > 0, a
    for png in (res.run_dir / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (res.run_dir / "checkpoints").exists()  # resume point removed after success
    assert any("Total params" in line for line in lines)  # model.summary() was printed
    m = Manifest.load(res.run_dir)
    assert m.labels == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert m.input.size == (48, 48) and m.architecture == "augmented" and m.format == "keras"
    hist = json.loads((res.run_dir / "history.json").read_text())
    assert {"accuracy", "val_accuracy", "loss", "val_loss", "epoch_seconds"} <= set(hist)
    assert len(hist["accuracy"]) == 2
    metrics = json.loads((res.run_dir / "metrics.json").read_text())
    assert sum(map(sum, metrics["confusion_matrix"])) == 40  # the whole validation split
    model = tf.keras.models.load_model(res.run_dir / "model.keras")
    assert model.output_shape == (None, 5)
    with pytest.raises(UsageError, match="already holds a finished run"):
        train(_cfg(gen_photos, tmp_path / "run"), log=lambda s: None, verbose=0)


class _Interrupt(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption after epoch 2")


def test_interrupted_run_resumes(gen_photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = _cfg(gen_photos, run, model="basic", epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, log=lambda s: None, verbose=0, extra_callbacks=[_Interrupt()])
    assert (run / "checkpoints").is_dir() and not (run / "model.keras").exists()
    lines: list[str] = []
    res = train(cfg, log=lines.append, verbose=0)
    assert res.resumed_from_epoch == 2
    assert any("resuming the interrupted run" in line for line in lines)
    assert len(res.history["accuracy"]) == 4  # 2 before the interruption + 2 after, no epoch lost or repeated
    with pytest.raises(UsageError, match="different configuration"):
        (run / "model.keras").unlink()
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "x").write_text("")
        train(_cfg(gen_photos, run, model="basic", epochs=4, seed=7), log=lambda s: None, verbose=0)


def test_unreadable_images_are_refused_before_training(gen_photos: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for c in ("roses", "tulips"):
        shutil.copytree(gen_photos / c, data / c)
    (data / "roses" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(DatasetError, match=r"(?s)1 unreadable image.*broken\.jpg"):
        train(_cfg(data, tmp_path / "run"), log=lambda s: None, verbose=0)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "deepclf.cli", "train", "--data", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: --data points at") and "Traceback" not in r.stderr


def test_a_run_folder_is_trained_by_one_process_at_a_time(tmp_path: Path) -> None:
    from deepclf.train.trainer import run_lock

    run = tmp_path / "run"
    # A real second process holds the lock, as a concurrent `deepclf train --out run` would.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from deepclf.train.trainer import run_lock\n"
            f"with run_lock(Path({str(run)!r})):\n    print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None  # a PIPE
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UsageError, match=r"being trained by another process \(pid \d+\)"), run_lock(run):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(run):  # released by the OS when the holder died
        pass
