"""Find the models and versions in a TF Serving models folder, without TensorFlow.

``deepclf convert`` publishes ``MODELS_DIR/<name>/<version>/`` (a SavedModel, the TFLite variants and
``manifest.json``). This module reads only the folder structure and the manifests, so deployment files can be
generated on a machine that has no TensorFlow::

    models = scan_models("models")
    [(m.name, m.versions) for m in models]     # [('flowers_augmented', (1,)), ('flowers_basic', (1, 2))]
    models[1].newest                           # 2
    models[1].manifest(2).labels               # ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from deepclf.errors import ModelFormatError, UsageError
from deepclf.manifest import MANIFEST_NAME, Manifest
from deepclf.versions import duplicate_versions, expected_layout, list_versions

#: What TF Serving needs in a version folder to load it as a SavedModel.
SAVED_MODEL_FILE = "saved_model.pb"

#: Model names end up in URLs (``/v1/models/<name>``), in shell health checks and in YAML; keep them plain.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ModelEntry:
    """One servable model: its TF Serving name (the folder name), its folder and its versions (ascending)."""

    name: str
    path: Path
    versions: tuple[int, ...]
    manifests: dict[int, Manifest] = field(default_factory=dict, compare=False, repr=False)

    @property
    def newest(self) -> int:
        """The highest version number (what TF Serving's default ``latest`` policy would serve)."""
        return self.versions[-1]

    def manifest(self, version: int | None = None) -> Manifest:
        """The manifest of ``version`` (default: the newest)."""
        return self.manifests[self.newest if version is None else version]


def scan_models(models_dir: str | os.PathLike[str]) -> list[ModelEntry]:
    """Every model under ``models_dir`` with its numeric version folders, sorted by name.

    Each model is a sub-folder holding at least one version folder; each version folder must hold
    ``saved_model.pb`` (what TF Serving loads) and ``manifest.json`` (what deepclf writes beside it). Hidden
    folders (``.flowers.partial-x``) and plain files are skipped. Raises ``UsageError`` when the folder is missing
    or holds no model, and ``ModelFormatError`` naming the folder when a model has no versions or a version is
    incomplete.
    """
    root = Path(models_dir)
    if not root.is_dir():
        raise UsageError(
            f"models folder {str(root)!r} does not exist or is not a folder; expected the folder "
            "`deepclf convert` publishes into (MODELS_DIR/<name>/<version>/)"
        )
    entries: list[ModelEntry] = []
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        if child.name.startswith(".") or not child.is_dir():
            continue
        if not _MODEL_NAME.match(child.name):
            raise ModelFormatError(
                f"model folder name {child.name!r} in {root} is not usable as a TF Serving model name; expected "
                "letters, digits, '_', '.' or '-' (it becomes part of URLs like /v1/models/<name>)"
            )
        # deepclf.versions' rules: what TF Serving takes as a version folder; ".3.partial-x" and other names skipped.
        duplicates = duplicate_versions(child)
        if duplicates:
            number, paths = min(duplicates.items())
            raise ModelFormatError(
                f"model {child.name!r} has {len(paths)} folders for version {number} "
                f"({' and '.join(repr(p.name) for p in paths)}); TF Serving would load only one of them, so keep one"
            )
        versions = dict(list_versions(child))
        if not versions:
            raise ModelFormatError(
                f"model folder {child} has no version folders; {expected_layout(child)}; publish one with "
                "`deepclf convert`, or remove the folder"
            )
        manifests: dict[int, Manifest] = {}
        for number, vdir in sorted(versions.items()):
            if not (vdir / SAVED_MODEL_FILE).is_file():
                raise ModelFormatError(
                    f"version folder {vdir} has no {SAVED_MODEL_FILE}; TF Serving could not load it "
                    "(expected a SavedModel written by `deepclf convert`)"
                )
            if not (vdir / MANIFEST_NAME).is_file():
                raise ModelFormatError(
                    f"version folder {vdir} has no {MANIFEST_NAME}; expected the manifest `deepclf convert` "
                    "writes beside every SavedModel"
                )
            manifests[number] = Manifest.load(vdir / MANIFEST_NAME)
        entries.append(ModelEntry(child.name, child, tuple(sorted(versions)), manifests))
    if not entries:
        raise UsageError(
            f"models folder {str(root)!r} holds no models; expected sub-folders like <name>/<version>/ "
            "with a SavedModel and manifest.json (what `deepclf convert` publishes)"
        )
    return entries
