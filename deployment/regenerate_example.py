"""Regenerate the committed example under deployment/tfserving/ (a test checks it is up to date).

    .venv/bin/python deployment/regenerate_example.py            # rewrites deployment/tfserving/

The generator needs only the folder structure and the manifests, so the example is rendered from a fake models
tree (empty saved_model.pb files) shaped like what `deepclf convert` publishes: flowers_basic with two versions
(labels stable=1, canary=2) and flowers_augmented with one (stable=1). docker-compose.yml points at ../../models,
the repository's models/ folder, where `deepclf convert ... --out models` publishes.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from deepclf.manifest import Manifest
from deepclf.serving.deploy import TFServingOptions, render_bundle, scan_models, write_bundle

HERE = Path(__file__).resolve().parent
EXAMPLE_DIR = HERE / "tfserving"
EXAMPLE_MODELS = {"flowers_basic": (1, 2), "flowers_augmented": (1,)}
FLOWER_CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
#: As seen from deployment/tfserving/docker-compose.yml.
EXAMPLE_OPTIONS = TFServingOptions(models_host_path="../../models")


def make_fake_models_tree(root: Path, models: Mapping[str, Iterable[int]] = EXAMPLE_MODELS) -> Path:
    """``root/<name>/<version>/`` with an empty saved_model.pb, a warmup file and a real manifest.json."""
    for name, versions in models.items():
        for version in versions:
            vdir = root / name / str(version)
            (vdir / "assets.extra").mkdir(parents=True, exist_ok=True)
            (vdir / "saved_model.pb").write_bytes(b"")
            (vdir / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"")
            Manifest(labels=FLOWER_CLASSES, name=name, format="savedmodel", created="2025-01-01T00:00:00+00:00",
                     source={"version": version}).save(vdir)
    return root


def render_example() -> dict[str, str]:
    """The example's files, exactly as the generator renders them now."""
    with tempfile.TemporaryDirectory() as tmp:
        models = scan_models(make_fake_models_tree(Path(tmp) / "models"))
        return render_bundle(models, EXAMPLE_OPTIONS)


def main() -> int:
    files = render_example()
    write_bundle(EXAMPLE_DIR, files, force=True)
    stale = sorted(p.relative_to(EXAMPLE_DIR).as_posix() for p in EXAMPLE_DIR.rglob("*")
                   if p.is_file() and p.relative_to(EXAMPLE_DIR).as_posix() not in files)
    for rel in stale:
        (EXAMPLE_DIR / rel).unlink()
    print(f"wrote {len(files)} files to {EXAMPLE_DIR}" + (f"; removed stale {', '.join(stale)}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
