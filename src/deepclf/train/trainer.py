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
import tempfile
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
from deepclf.train.strategy import DEFAULT_PEER_TIMEOUT, ClusterRole, Distribution, choose_strategy, cluster_role

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    """Everything that determines a training run (written to ``config.json``)."""

    model: str = "basic"
    data_dir: str = ""
    run_dir: str = ""
    epochs: int | None = None  # None -> the model's recipe (10 basic, 15 augmented, 30 edge)
    img_size: tuple[int, int] | None = None  # None -> the recipe's (180x180 for the tutorial CNNs, 112x112 edge)
    batch_size: int | None = None  # None -> the recipe's (32 for every model)
    seed: int = 123
    validation_split: float = 0.2
    strategy: str = "auto"
    name: str = "flowers"
    weights: str | None = None  # transfer-learning models: "imagenet" or a backbone weights file

    def resolved(self) -> TrainConfig:
        recipe = get_spec(self.model).recipe
        epochs = self.epochs if self.epochs is not None else recipe.epochs
        if epochs < 1:
            raise UsageError(f"--epochs must be at least 1, got {epochs}")
        batch_size = self.batch_size if self.batch_size is not None else recipe.batch_size
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
        h, w = self.img_size if self.img_size is not None else recipe.img_size
        if h < 8 or w < 8:
            raise UsageError(f"--img-size must be at least 8x8 (three 2x2 poolings), got {h}x{w}")
        return dataclasses.replace(self, epochs=epochs, batch_size=batch_size, img_size=(int(h), int(w)))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["img_size"] = list(self.img_size) if self.img_size is not None else None
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

    def __init__(self, tf: Any) -> None:
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
            epoch = (row.get("epoch") or "").strip()
            if epoch.isascii() and epoch.isdigit():  # Keras writes 0, 1, ...; skip anything else (str.isdigit
                rows[int(epoch)] = row  # alone would let '²' through to int())
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
    peer_timeout: float = DEFAULT_PEER_TIMEOUT,
) -> TrainResult:
    """Train ``config.model`` and write the run folder; resumes an interrupted run in the same folder.

    Only one process may train into a run folder at a time (an exclusive lock on ``RUN/.train.lock``, released
    by the OS even if the process dies): a second ``deepclf train`` on the same ``--out`` is refused instead of
    "resuming" from the first one's checkpoints while it is still writing them.

    With ``TF_CONFIG`` set, every worker runs this same call; only the chief writes ``config.run_dir`` (and keeps
    the checkpoints a resume starts from: it sends its resume point to the others). Every other worker writes to a
    temporary folder of its own, removed when it ends, and never touches its ``run_dir``.
    """
    if not config.run_dir:
        raise UsageError("a run folder is needed (--out RUN_DIR)")
    cfg = config.resolved()
    role = cluster_role(cfg.strategy)  # TF-free: which folder this process may write, before any TF op
    run = Path(cfg.run_dir)
    if not role.is_chief:
        # TensorFlow's multi-worker rule: only the chief writes the real output; the others write to a temporary
        # folder of their own (their copy of what every worker must write, e.g. the saved model) and remove it.
        work = Path(tempfile.mkdtemp(prefix=f"deepclf-train-{role.task_type}{role.task_index}-"))
        try:
            result = _train_in(
                cfg,
                role,
                work,
                log=_quiet(log, role),
                force=False,
                extra_callbacks=extra_callbacks,
                verbose=verbose,
                peer_timeout=peer_timeout,
                discard_on_timeout=[work],
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(
            f"{role.name}: done; the chief writes the run ({cfg.run_dir} on its machine); this worker's temporary "
            f"folder {work} was removed"
        )
        return dataclasses.replace(result, run_dir=run, artifacts={})
    # A chief that gives up waiting for its peers has written only the lock file: remove a folder it made.
    discard = [] if run.exists() else [run]
    return _train_in(
        cfg,
        role,
        run,
        log=log,
        force=force,
        extra_callbacks=extra_callbacks,
        verbose=verbose,
        peer_timeout=peer_timeout,
        discard_on_timeout=discard,
    )


def _train_in(
    cfg: TrainConfig,
    role: ClusterRole,
    work: Path,
    *,
    log: Log,
    force: bool,
    extra_callbacks: Sequence[Any],
    verbose: int | None,
    peer_timeout: float,
    discard_on_timeout: Sequence[Path],
) -> TrainResult:
    """Lock ``work``, check it and the data, create the strategy, then train into ``work``."""
    with run_lock(work):
        _check_run_folder(work, cfg, force)
        report = check_folder(cfg.data_dir)
        if not report.ok:
            listing = "\n".join(f"  {p}: {why}" for p, why in report.unreadable)
            raise DatasetError(
                f"{cfg.data_dir} has {len(report.unreadable)} unreadable image(s); fix or remove them before "
                f"training (see `deepclf data check {cfg.data_dir}`):\n{listing}"
            )
        # The strategy is the first TensorFlow op of the process (tf.distribute requires it for collectives).
        dist = choose_strategy(
            cfg.strategy, peer_timeout=peer_timeout, discard_on_timeout=discard_on_timeout, role=role
        )
        return _train(
            cfg, dist, work, report.total, log=log, force=force, extra_callbacks=extra_callbacks, verbose=verbose
        )


def _quiet(log: Log, role: ClusterRole) -> Log:
    """Non-chief workers log only the lines that say where they stand (the chief logs the rest)."""
    return lambda line: log(f"[{role.name}] {line}") if line.startswith(("strategy:", "data:", "resuming")) else None


def _check_run_folder(run: Path, cfg: TrainConfig, force: bool) -> None:
    """Refuse a finished run (without --force) and a resume with another configuration; clear stale results."""
    ckpt_dir = run / "checkpoints"
    resuming = ckpt_dir.is_dir() and any(ckpt_dir.iterdir())
    if (run / "model.keras").exists() and not resuming and not force:
        raise UsageError(f"{run} already holds a finished run (model.keras); pass --force to train it again")
    if resuming and (run / "config.json").exists():
        saved = json.loads((run / "config.json").read_text())
        mine = cfg.to_dict()
        # The number of workers may change between attempts: the weights and the global batch do not depend on it.
        diffs = {k: (saved.get(k), v) for k, v in mine.items() if k != "epochs" and saved.get(k) != v}
        if diffs:
            raise UsageError(
                f"{run} holds an interrupted run with a different configuration {diffs} (saved, given); "
                "resume with the same flags, or use another --out folder"
            )
    if force and not resuming:
        for stale in ("history.csv", "history.json", "metrics.json"):
            (run / stale).unlink(missing_ok=True)


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


def _shard_by_data(tf, ds):  # -> tf.data.Dataset
    """Set the multi-worker auto-shard policy explicitly: DATA.

    The input is a list of file paths made into a dataset with ``from_tensor_slices``: there are no input files for
    the FILE policy to split, and AUTO would fall back to DATA after a warning. With DATA every worker builds the same
    pipeline (same split, same seeded shuffle), so the elements each keeps are disjoint and together cover the
    split. Harmless for a single process.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _train(
    cfg: TrainConfig,
    dist: Distribution,
    run: Path,
    images: int,
    *,
    log: Log,
    force: bool,
    extra_callbacks: Sequence[Any],
    verbose: int | None,
) -> TrainResult:
    tf = require_tensorflow("training")
    from deepclf.data.loader import load_datasets

    chief = dist.role.is_chief
    ckpt_dir = run / "checkpoints"
    run.mkdir(parents=True, exist_ok=True)
    if chief:
        (run / "plots").mkdir(exist_ok=True)
    distribution = {"strategy": dist.description, "workers": dist.role.workers, "replicas": dist.replicas}
    recipe = get_spec(cfg.model).recipe  # what the flags left to the model's recipe
    atomic_write_json(run / "config.json", {**cfg.to_dict(), "distribution": distribution, "recipe": recipe.to_dict()})
    log = _tee(log, run / "train.log") if chief else log
    log(f"strategy: {dist.description}; {dist.replicas} replica(s) in sync, global batch {cfg.batch_size}")

    tf.keras.utils.set_random_seed(cfg.seed)
    assert cfg.img_size is not None and cfg.batch_size is not None and cfg.epochs is not None  # resolved
    augment = recipe.augment.batch_fn(cfg.img_size) if recipe.augment else None
    cache_size = (round(cfg.img_size[0] * recipe.cache_scale), round(cfg.img_size[1] * recipe.cache_scale))
    with dist.strategy.scope():
        train_ds, val_ds, class_names = load_datasets(
            cfg.data_dir,
            img_size=cfg.img_size,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            validation_split=cfg.validation_split,
            augment=augment,
            cache_size=cache_size,
        )
        steps_per_epoch = int(train_ds.cardinality())
        if steps_per_epoch < 1:
            raise UsageError(
                f"--batch-size {cfg.batch_size} is larger than the training split of {cfg.data_dir}; "
                "use a smaller batch (the edge recipe trains on whole batches only)"
            )
        train_ds, val_ds = _shard_by_data(tf, train_ds), _shard_by_data(tf, val_ds)
        model = build_model(cfg.model, len(class_names), cfg.img_size, seed=cfg.seed, weights=cfg.weights)
    log(
        f"data: {cfg.data_dir}: {images} images in {len(class_names)} classes ({', '.join(class_names)}); "
        f"{1 - cfg.validation_split:.0%}/{cfg.validation_split:.0%} split, seed {cfg.seed}"
    )
    if chief:
        model.summary(print_fn=lambda line, *a, **k: log(line))

    manifest = Manifest(
        labels=class_names,
        input=InputSpec(height=cfg.img_size[0], width=cfg.img_size[1]),
        name=cfg.name,
        format="keras",
        architecture=cfg.model,
        source={"data_dir": str(cfg.data_dir), "run_dir": str(run), "epochs": cfg.epochs, "seed": cfg.seed},
    )
    artifacts = {"manifest": manifest.save(run)} if chief else {}
    if chief:
        artifacts.update(_plot_inputs(tf, train_ds, class_names, run, cfg, model, augment, cache_size))

    # One fit per phase of the recipe (one for every model trained from scratch). A multi-phase recipe keeps one
    # backup folder per phase, each holding the optimizer of its own phase, and resumes in the latest one.
    plan = recipe.phase_plan(cfg.epochs)
    phased = len(plan) > 1
    if phased and dist.role.multi_worker:
        raise UsageError(
            f"{cfg.model} trains in phases (frozen backbone, then fine-tuning), which multi-worker training does "
            "not support yet; train it in one process (a MirroredStrategy on several GPUs works)"
        )
    backups = [ckpt_dir / f"phase-{i + 1}" if phased else ckpt_dir for i in range(len(plan))]
    first, start_epoch = 0, 0
    if not dist.role.multi_worker:
        for i, backup in enumerate(backups):
            if epoch := _backup_epoch(backup):
                first, start_epoch = i, epoch
    timer = _EpochTimer(tf)
    for i, (phase, begin, end) in enumerate(plan):
        if i < first:
            continue
        with dist.strategy.scope():
            if phase is not None:
                from deepclf.train.transfer import set_backbone_trainable

                set_backbone_trainable(model, phase.backbone_trainable)
            if phase is not None and max(begin, start_epoch) < end:  # a finished phase is only restored (0 epochs)
                log(
                    f"phase {i + 1}/{len(plan)}: epochs {begin + 1}-{end}, learning rate {phase.learning_rate:g}, "
                    f"backbone {'trainable' if phase.backbone_trainable else 'frozen'}"
                )
            compile_model(
                model,
                recipe,
                steps_per_epoch=steps_per_epoch,
                epochs=cfg.epochs,
                learning_rate=phase.learning_rate if phase else None,
            )
        callbacks = [
            timer.callback,
            tf.keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
            # a finished phase's backup stays until the run is done: the next phase starts from it after a crash
            tf.keras.callbacks.BackupAndRestore(str(backups[i]), delete_checkpoint=not phased),
            *extra_callbacks,
        ]
        if dist.role.multi_worker:
            start_epoch = _resume_from_chief(tf, dist, model, ckpt_dir)
            _keras_multi_worker_fixes(tf, model, dist.strategy)
        if start_epoch and i == first:
            log(f"resuming the interrupted run in {run if chief else 'the chief'} after epoch {start_epoch}")
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=end,
            callbacks=callbacks,
            shuffle=False,  # ds shuffles
            initial_epoch=max(begin, start_epoch),  # BackupAndRestore sets it too; other workers learn it here
            verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
        )

    history = _read_history_csv(run / "history.csv")
    _write_history(run, history)
    # Every worker saves (saving may read synchronised variables collectively); only the chief's copy is kept.
    with atomic_output_file(run / "model.keras") as tmp:
        model.save(tmp)
    artifacts["model"] = run / "model.keras"
    times = history.get("epoch_seconds", [])
    sec_per_epoch = float(np.mean(times[1:] if len(times) > 1 else times)) if times else float("nan")
    val_loss = float(history.get("val_loss", [float("nan")])[-1])
    if not chief:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        val_acc = float(history.get("val_accuracy", [float("nan")])[-1])
        return TrainResult(run, history, val_acc, val_loss, sec_per_epoch, start_epoch, artifacts)

    y_true, y_pred = [], []
    for x, y in val_ds:
        logits = model(x, training=False)
        y_true.extend(y.numpy().tolist())
        y_pred.extend(np.argmax(logits.numpy(), axis=1).tolist())
    cm = plots.confusion_matrix(y_true, y_pred, len(class_names))
    artifacts["confusion_matrix"] = plots.plot_confusion(
        cm, class_names, run / "plots" / "confusion_matrix.png", title=f"{cfg.model}: validation confusion matrix"
    )
    artifacts["curves"] = plots.plot_history(
        history, run / "plots" / "curves.png", title=f"{cfg.model} ({len(history.get('accuracy', []))} epochs)"
    )
    val_acc = float(np.trace(cm) / max(1, cm.sum()))
    metrics = {
        "model": cfg.model,
        "epochs": len(history.get("accuracy", [])),
        "val_accuracy": val_acc,
        "val_loss": val_loss,
        "train_accuracy": float(history.get("accuracy", [float("nan")])[-1]),
        "seconds_per_epoch": sec_per_epoch,
        "first_epoch_seconds": float(times[0]) if times else float("nan"),
        "strategy": dist.description,
        "workers": dist.role.workers,
        "replicas": dist.replicas,
        "images": images,
        "params": int(model.count_params()),
        "confusion_matrix": cm.tolist(),
        "class_names": class_names,
    }
    atomic_write_json(run / "metrics.json", metrics)
    manifest.replace(source={**manifest.source, "val_accuracy": val_acc, "epochs": metrics["epochs"]}).save(run)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    artifacts["log"] = run / "train.log"
    log(f"validation accuracy {val_acc:.4f}, loss {val_loss:.4f}; {sec_per_epoch:.1f} s per epoch")
    return TrainResult(run, history, val_acc, val_loss, sec_per_epoch, start_epoch, artifacts)


def _tee(log: Log, path: Path) -> Log:
    """Log to ``log`` and append each line to ``path`` (the run's train.log, kept across resumes)."""

    def both(line: str) -> None:
        log(line)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    return both


def _keras_multi_worker_fixes(tf, model, strategy) -> None:
    """Work around two bugs of Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` (seen with Keras 3.15.1).

    1. Before training, Keras builds the model's state from the first batch, and first reduces that whole
       ``(x, y)`` batch across replicas with one ``strategy.reduce``, which this strategy cannot do for a tuple
       (``ValueError: Attempt to convert a value (PerReplica:...)``). The batch only supplies shapes and dtypes, so
       this worker's own per-replica values serve as well, with no collective.
    2. Each step's logs are reduced with ``strategy.reduce("MEAN", value, axis=0)``, which fails on the scalar
       losses and metrics (``Invalid reduction dimension 0 for input with 0 dimensions``). Returning each as a
       one-element vector makes that reduction the plain mean over the replicas, a scalar again.

    Both are per-instance overrides of this one model, so nothing else in the process changes.
    """
    build, train_step, test_step = model._maybe_symbolic_build, model.train_step, model.test_step

    def local(v):
        return strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v

    def build_from_local(iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(local, next(it))
                break
        return build(data_batch=data_batch)

    def vectors(logs):
        return {k: tf.reshape(v, [1]) if tf.is_tensor(v) and v.shape.rank == 0 else v for k, v in logs.items()}

    model._maybe_symbolic_build = build_from_local
    model.train_step = lambda data: vectors(train_step(data))
    model.test_step = lambda data: vectors(test_step(data))


def _resume_from_chief(tf, dist: Distribution, model, ckpt_dir: Path) -> int:
    """Give every worker the chief's resume point: its epoch, model weights and optimizer state.

    Only the chief keeps checkpoints across attempts (the other workers' folders are temporary, and on Kubernetes
    their pods may come back on other machines), so the chief restores its ``BackupAndRestore`` backup and
    broadcasts it: an all-reduce SUM to which only the chief's first replica contributes, which is exact (x + 0).
    Returns the number of completed epochs (0 when starting fresh); then no weights are sent.
    """
    s, chief = dist.strategy, dist.role.is_chief
    with s.scope():
        model.optimizer.build(model.trainable_variables)  # optimizer state must exist on every worker
    epoch = _backup_epoch(ckpt_dir) if chief else 0
    weights = ckpt_dir / "latest.weights.h5"
    if chief and epoch and weights.exists():
        model.load_weights(weights)

    def from_chief(value):
        mine = value if chief else tf.zeros_like(value)

        def first_replica_only():
            ctx = tf.distribute.get_replica_context()
            return tf.where(tf.equal(ctx.replica_id_in_sync_group, 0), mine, tf.zeros_like(mine))

        return s.reduce(tf.distribute.ReduceOp.SUM, s.run(first_replica_only), axis=None)

    epoch = int(from_chief(tf.constant(epoch, tf.int64)).numpy())
    if epoch:
        for v in [*model.weights, *model.optimizer.variables]:
            v.assign(from_chief(tf.convert_to_tensor(v)))
    return epoch


def _backup_epoch(ckpt_dir: Path) -> int:
    """The number of completed epochs recorded by BackupAndRestore (0 when starting fresh)."""
    meta = ckpt_dir / "training_metadata.json"
    try:
        # Keras records the number of completed epochs (the next run's initial_epoch).
        return int(json.loads(meta.read_text()).get("epoch", 0))
    except (OSError, ValueError):
        return 0


def _plot_inputs(
    tf, train_ds, class_names, run: Path, cfg: TrainConfig, model, augment=None, cache_size=None
) -> dict[str, Path]:
    """The 3x3 sample grid and the augmentation grid of one training image.

    With a pipeline augmentation (``augment``, the edge recipe) the samples are training batches as the model sees
    them, and the grid shows nine views of the first training photo, cached as training caches it, drawn by that
    very function; otherwise the model's own augmentation layers (or the tutorial's) on the first sample."""
    images, labels = next(iter(train_ds.take(1)))
    images, labels = images.numpy(), labels.numpy()
    out = {"samples": plots.plot_samples(images, labels, class_names, run / "plots" / "samples.png")}
    first = images[:1]
    if augment is not None:
        from deepclf.data.split import split_files
        from deepclf.preprocessing_tf import decode_and_resize

        paths, label_ids, _ = split_files(
            cfg.data_dir, "training", validation_split=cfg.validation_split, seed=cfg.seed
        )
        photo = tf.round(decode_and_resize(tf.io.read_file(str(paths[0])), *cache_size))
        versions = list(augment(tf.repeat(photo[None], 9, axis=0), tf.constant([cfg.seed, 1], tf.int64)).numpy())
        labels = np.asarray(label_ids[:1])
    else:
        try:
            aug = model.get_layer("data_augmentation")
        except ValueError:
            aug = data_augmentation(cfg.seed)
        versions = [aug(first, training=True).numpy()[0] for _ in range(9)]
    out["augmentation"] = plots.plot_augmentations(
        versions, run / "plots" / "augmentation.png", title=f"augmentations of one {class_names[int(labels[0])]} image"
    )
    return out
