"""Train one registered model on a folder of class sub-folders and write a complete run folder.

A run folder holds everything needed to use, convert and explain the model::

    RUN/model.keras          the trained Keras model (input float32 0..255 named "image", output logits)
    RUN/manifest.json        labels, input size, preprocessing contract (deepclf.manifest)
    RUN/config.json          the resolved configuration
    RUN/history.json|.csv    per-epoch accuracy/loss (+ validation) and seconds per epoch
    RUN/metrics.json         final validation accuracy/loss, seconds per epoch, strategy
    RUN/plots/*.png          curves, samples, augmentation, confusion_matrix
    RUN/checkpoints/         only while training: resume point of an interrupted run (removed on success)

Running the same command again on an interrupted run resumes from its last completed epoch::

    result = train(TrainConfig(model="augmented", data_dir="flower_photos", run_dir="runs/aug"))
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.data.check import check_folder
from deepclf.errors import DatasetError, UsageError, require_tensorflow
from deepclf.fsutil import atomic_output_file, atomic_write_json, atomic_write_text
from deepclf.manifest import InputSpec, Manifest
from deepclf.train import plots
from deepclf.train.models import build_model, compile_model, data_augmentation, get_spec

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    """Everything that determines a training run (written to ``config.json``)."""

    model: str = "basic"
    data_dir: str = ""
    run_dir: str = ""
    epochs: int | None = None  # None -> the model's default (10 basic, 15 augmented)
    img_size: tuple[int, int] = (180, 180)
    batch_size: int = 32
    seed: int = 123
    validation_split: float = 0.2
    strategy: str = "auto"
    name: str = "flowers"

    def resolved(self) -> TrainConfig:
        spec = get_spec(self.model)
        epochs = self.epochs if self.epochs is not None else spec.default_epochs
        if epochs < 1:
            raise UsageError(f"--epochs must be at least 1, got {epochs}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        h, w = self.img_size
        if h < 8 or w < 8:
            raise UsageError(f"--img-size must be at least 8x8 (three 2x2 poolings), got {h}x{w}")
        return dataclasses.replace(self, epochs=epochs, img_size=(int(h), int(w)))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["img_size"] = list(self.img_size)
        return d


@dataclass
class TrainResult:
    """What ``train`` returns: where the run is and how it went."""

    run_dir: Path
    history: dict[str, list[float]]
    val_accuracy: float
    val_loss: float
    seconds_per_epoch: float
    resumed_from_epoch: int = 0
    artifacts: dict[str, Path] = field(default_factory=dict)


class _EpochTimer:
    """Adds ``epoch_seconds`` to each epoch's logs (placed before CSVLogger so it lands in history.csv)."""

    def __init__(self, tf):
        outer = self

        class _CB(tf.keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                if logs is not None:
                    logs["epoch_seconds"] = time.perf_counter() - outer.start

        self.start = time.perf_counter()
        self.callback = _CB()


def _read_history_csv(path: Path) -> dict[str, list[float]]:
    """history.csv (appended across resumes) -> {metric: [per epoch]}, keeping the last row of each epoch."""
    if not path.exists():
        return {}
    rows: dict[int, dict[str, str]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("epoch", "").strip().isdigit():
                rows[int(row["epoch"])] = row
    keys = [k for k in (next(iter(rows.values()), {}) or {}) if k != "epoch"]
    return {k: [float(rows[e][k]) for e in sorted(rows) if rows[e].get(k) not in (None, "")] for k in keys}


def _write_history(run: Path, history: dict[str, list[float]]) -> None:
    atomic_write_json(run / "history.json", history)
    keys = list(history)
    n = max((len(v) for v in history.values()), default=0)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["epoch", *keys])
    for e in range(n):
        w.writerow([e + 1, *[f"{history[k][e]:.6f}" if e < len(history[k]) else "" for k in keys]])
    atomic_write_text(run / "history.csv", buf.getvalue())


def train(
    config: TrainConfig,
    *,
    log: Log = print,
    force: bool = False,
    extra_callbacks: Sequence[Any] = (),
    verbose: int | None = None,
) -> TrainResult:
    """Train ``config.model`` and write the run folder; resumes an interrupted run in the same folder.

    Only one process may train into a run folder at a time (an exclusive lock on ``RUN/.train.lock``, released
    by the OS even if the process dies): a second ``deepclf train`` on the same ``--out`` is refused instead of
    "resuming" from the first one's checkpoints while it is still writing them.
    """
    if not config.run_dir:
        raise UsageError("a run folder is needed (--out RUN_DIR)")
    with run_lock(Path(config.run_dir)):
        return _train(config, log=log, force=force, extra_callbacks=extra_callbacks, verbose=verbose)


@contextlib.contextmanager
def run_lock(run: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on ``run/.train.lock``; ``UsageError`` if another process holds it."""
    import fcntl

    run.mkdir(parents=True, exist_ok=True)
    fh = open(run / ".train.lock", "a+")  # noqa: SIM115 - closed in finally
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise UsageError(
                f"{run} is being trained by another process ({holder}); wait for it to finish, "
                "or train into another --out folder"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing the file releases the lock


def _train(
    config: TrainConfig,
    *,
    log: Log,
    force: bool,
    extra_callbacks: Sequence[Any],
    verbose: int | None,
) -> TrainResult:
    tf = require_tensorflow("training")
    from deepclf.data.loader import load_datasets
    from deepclf.train.strategy import choose_strategy

    cfg = config.resolved()
    run = Path(cfg.run_dir)
    ckpt_dir = run / "checkpoints"
    resuming = ckpt_dir.is_dir() and any(ckpt_dir.iterdir())
    if (run / "model.keras").exists() and not resuming and not force:
        raise UsageError(f"{run} already holds a finished run (model.keras); pass --force to train it again")
    if resuming and (run / "config.json").exists():
        saved = json.loads((run / "config.json").read_text())
        mine = cfg.to_dict()
        diffs = {k: (saved.get(k), v) for k, v in mine.items() if k not in ("epochs",) and saved.get(k) != v}
        if diffs:
            raise UsageError(
                f"{run} holds an interrupted run with a different configuration {diffs} (saved, given); "
                "resume with the same flags, or use another --out folder"
            )
    if force and not resuming:
        for stale in ("history.csv", "history.json", "metrics.json"):
            (run / stale).unlink(missing_ok=True)

    report = check_folder(cfg.data_dir)
    if not report.ok:
        listing = "\n".join(f"  {p}: {why}" for p, why in report.unreadable)
        raise DatasetError(
            f"{cfg.data_dir} has {len(report.unreadable)} unreadable image(s); fix or remove them before training "
            f"(see `deepclf data check {cfg.data_dir}`):\n{listing}"
        )
    run.mkdir(parents=True, exist_ok=True)
    (run / "plots").mkdir(exist_ok=True)
    atomic_write_json(run / "config.json", cfg.to_dict())

    tf.keras.utils.set_random_seed(cfg.seed)
    train_ds, val_ds, class_names = load_datasets(
        cfg.data_dir, img_size=cfg.img_size, batch_size=cfg.batch_size, seed=cfg.seed,
        validation_split=cfg.validation_split,
    )
    log(f"data: {cfg.data_dir}: {report.total} images in {len(class_names)} classes ({', '.join(class_names)}); "
        f"{1 - cfg.validation_split:.0%}/{cfg.validation_split:.0%} split, seed {cfg.seed}")

    strategy, strategy_desc = choose_strategy(cfg.strategy)
    log(f"strategy: {strategy_desc}")
    with strategy.scope():
        model = build_model(cfg.model, len(class_names), cfg.img_size, seed=cfg.seed)
        compile_model(model)
    model.summary(print_fn=lambda line, *a, **k: log(line))

    manifest = Manifest(
        labels=class_names,
        input=InputSpec(height=cfg.img_size[0], width=cfg.img_size[1]),
        name=cfg.name,
        format="keras",
        architecture=cfg.model,
        source={"data_dir": str(cfg.data_dir), "run_dir": str(run), "epochs": cfg.epochs, "seed": cfg.seed},
    )
    artifacts = {"manifest": manifest.save(run)}
    artifacts.update(_plot_inputs(tf, train_ds, class_names, run, cfg, model))

    timer = _EpochTimer(tf)
    callbacks = [
        timer.callback,
        tf.keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
        tf.keras.callbacks.BackupAndRestore(str(ckpt_dir)),
        *extra_callbacks,
    ]
    start_epoch = _backup_epoch(ckpt_dir)
    if resuming:
        log(f"resuming the interrupted run in {run} after epoch {start_epoch}")
    model.fit(
        train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=callbacks, shuffle=False,  # ds shuffles
        verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
    )

    history = _read_history_csv(run / "history.csv")
    _write_history(run, history)
    with atomic_output_file(run / "model.keras") as tmp:
        model.save(tmp)
    artifacts["model"] = run / "model.keras"

    y_true, y_pred = [], []
    for x, y in val_ds:
        logits = model(x, training=False)
        y_true.extend(y.numpy().tolist())
        y_pred.extend(np.argmax(logits.numpy(), axis=1).tolist())
    cm = plots.confusion_matrix(y_true, y_pred, len(class_names))
    artifacts["confusion_matrix"] = plots.plot_confusion(cm, class_names, run / "plots" / "confusion_matrix.png",
                                                         title=f"{cfg.model}: validation confusion matrix")
    artifacts["curves"] = plots.plot_history(history, run / "plots" / "curves.png",
                                             title=f"{cfg.model} ({len(history.get('accuracy', []))} epochs)")
    times = history.get("epoch_seconds", [])
    sec_per_epoch = float(np.mean(times[1:] if len(times) > 1 else times)) if times else float("nan")
    val_acc = float(np.trace(cm) / max(1, cm.sum()))
    val_loss = float(history.get("val_loss", [float("nan")])[-1])
    metrics = {
        "model": cfg.model, "epochs": len(history.get("accuracy", [])), "val_accuracy": val_acc,
        "val_loss": val_loss, "train_accuracy": float(history.get("accuracy", [float("nan")])[-1]),
        "seconds_per_epoch": sec_per_epoch, "first_epoch_seconds": float(times[0]) if times else float("nan"),
        "strategy": strategy_desc, "images": report.total, "confusion_matrix": cm.tolist(),
        "class_names": class_names,
    }
    atomic_write_json(run / "metrics.json", metrics)
    manifest.replace(source={**manifest.source, "val_accuracy": val_acc, "epochs": metrics["epochs"]}).save(run)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    log(f"validation accuracy {val_acc:.4f}, loss {val_loss:.4f}; {sec_per_epoch:.1f} s per epoch")
    return TrainResult(run, history, val_acc, val_loss, sec_per_epoch, start_epoch, artifacts)


def _backup_epoch(ckpt_dir: Path) -> int:
    """The number of completed epochs recorded by BackupAndRestore (0 when starting fresh)."""
    meta = ckpt_dir / "training_metadata.json"
    try:
        # Keras records the number of completed epochs (the next run's initial_epoch).
        return int(json.loads(meta.read_text()).get("epoch", 0))
    except (OSError, ValueError):
        return 0


def _plot_inputs(tf, train_ds, class_names, run: Path, cfg: TrainConfig, model) -> dict[str, Path]:
    """The 3x3 sample grid and the augmentation grid of one training image."""
    images, labels = next(iter(train_ds.take(1)))
    images, labels = images.numpy(), labels.numpy()
    out = {"samples": plots.plot_samples(images, labels, class_names, run / "plots" / "samples.png")}
    try:
        aug = model.get_layer("data_augmentation")
    except ValueError:
        aug = data_augmentation(cfg.seed)
    first = images[:1]
    versions = [aug(first, training=True).numpy()[0] for _ in range(9)]
    out["augmentation"] = plots.plot_augmentations(
        versions, run / "plots" / "augmentation.png", title=f"augmentations of one {class_names[int(labels[0])]} image")
    return out
