"""PNG plots of a training run: curves, sample grid, augmentation grid, confusion matrix (matplotlib, Agg).

Each plot is written atomically (temp then rename) and returned as its path::

    plot_history(history, run / "plots" / "curves.png")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from deepclf.fsutil import atomic_output_file


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike[str]) -> Path:
    with atomic_output_file(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    _plt().close(fig)
    return Path(path)


def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike[str], title: str = "") -> Path:
    """Training and validation accuracy and loss against epochs, side by side (the tutorial's figure)."""
    plt = _plt()
    epochs = range(1, len(history.get("accuracy", [])) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(epochs, history.get(metric, []), "o-", label=f"Training {metric}")
        ax.plot(epochs, history.get(f"val_{metric}", []), "o-", label=f"Validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_title(f"Training and validation {metric}")
        ax.legend(loc="lower right" if metric == "accuracy" else "upper right")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_samples(
    images: np.ndarray, labels: Sequence[int], class_names: Sequence[str], path: str | os.PathLike[str]
) -> Path:
    """A 3x3 grid of training images with their labels."""
    plt = _plt()
    fig = plt.figure(figsize=(8, 8))
    for i in range(min(9, len(images))):
        ax = plt.subplot(3, 3, i + 1)
        ax.imshow(np.clip(images[i], 0, 255).astype("uint8"))
        ax.set_title(class_names[int(labels[i])])
        ax.axis("off")
    return _save(fig, path)


def plot_augmentations(augmented: Sequence[np.ndarray], path: str | os.PathLike[str], title: str = "") -> Path:
    """A 3x3 grid of augmented versions of one image."""
    plt = _plt()
    fig = plt.figure(figsize=(8, 8))
    for i, img in enumerate(list(augmented)[:9]):
        ax = plt.subplot(3, 3, i + 1)
        ax.imshow(np.clip(img, 0, 255).astype("uint8"))
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts [true, predicted] as an int64 matrix."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | os.PathLike[str], title: str = "") -> Path:
    """The confusion matrix as a labelled heat map with counts in the cells."""
    plt = _plt()
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2, 1.2 * n + 1.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    thresh = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > thresh else "black")
    acc = np.trace(cm) / max(1, cm.sum())
    ax.set_title(title or f"Validation confusion matrix (accuracy {acc:.1%})")
    return _save(fig, path)
