"""Regenerate the committed examples under deployment/ (a test checks they are up to date).

    .venv/bin/python deployment/regenerate_example.py    # rewrites deployment/tfserving/, edge-k8s/, training-k8s/

The generators need only the folder structure and the manifests, so the serving examples are rendered from a fake
models tree (empty saved_model.pb files) shaped like what `deepclf convert` publishes: flowers_basic with two
versions (labels stable=1, canary=2) and flowers_augmented with one (stable=1). docker-compose.yml points at
../../models, the repository's models/ folder, where `deepclf convert ... --out models` publishes. The training
example runs `deepclf train --model basic --epochs 10` on two workers.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from deepclf.deploy.edge import EdgeOptions, render_edge
from deepclf.deploy.tfserving import TFServingOptions, render_bundle, scan_models, write_bundle
from deepclf.deploy.training import TrainingOptions, render_training
from deepclf.manifest import Manifest

HERE = Path(__file__).resolve().parent
EXAMPLE_DIR = HERE / "tfserving"
EDGE_DIR = HERE / "edge-k8s"
TRAINING_DIR = HERE / "training-k8s"
EXAMPLE_MODELS = {"flowers_basic": (1, 2), "flowers_augmented": (1,)}
FLOWER_CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
#: As seen from deployment/tfserving/docker-compose.yml.
EXAMPLE_OPTIONS = TFServingOptions(models_host_path="../../models")
EDGE_OPTIONS = EdgeOptions()
TRAINING_OPTIONS = TrainingOptions(name="flowers-basic", model="basic", workers=2, epochs=10)


def make_fake_models_tree(root: Path, models: Mapping[str, Iterable[int]] = EXAMPLE_MODELS) -> Path:
    """``root/<name>/<version>/`` with an empty saved_model.pb, a warmup file and a real manifest.json."""
    for name, versions in models.items():
        for version in versions:
            vdir = root / name / str(version)
            (vdir / "assets.extra").mkdir(parents=True, exist_ok=True)
            (vdir / "saved_model.pb").write_bytes(b"")
            (vdir / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"")
            Manifest(
                labels=FLOWER_CLASSES,
                name=name,
                format="savedmodel",
                created="2025-01-01T00:00:00+00:00",
                source={"version": version},
            ).save(vdir)
    return root


def render_example() -> dict[str, str]:
    """The TF Serving example's files, exactly as the generator renders them now."""
    with tempfile.TemporaryDirectory() as tmp:
        models = scan_models(make_fake_models_tree(Path(tmp) / "models"))
        return render_bundle(models, EXAMPLE_OPTIONS)


def render_edge_example() -> dict[str, str]:
    """The edge server's Kubernetes example, from the same models tree."""
    with tempfile.TemporaryDirectory() as tmp:
        return render_edge(scan_models(make_fake_models_tree(Path(tmp) / "models")), EDGE_OPTIONS)


def render_training_example() -> dict[str, str]:
    """The multi-worker training example."""
    return render_training(TRAINING_OPTIONS)


def render_all() -> dict[Path, dict[str, str]]:
    """``{example folder: {relative path: text}}`` for every committed example."""
    return {EXAMPLE_DIR: render_example(), EDGE_DIR: render_edge_example(), TRAINING_DIR: render_training_example()}


def main() -> int:
    for folder, files in render_all().items():
        write_bundle(folder, files, force=True)
        stale = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and p.relative_to(folder).as_posix() not in files
        )
        for rel in stale:
            (folder / rel).unlink()
        print(f"wrote {len(files)} files to {folder}" + (f"; removed stale {', '.join(stale)}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
