"""Fixtures for the Kubernetes bundle tests: the committed examples' script, a fake models tree, parsed bundles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO / "deployment"


example = load_script("deployment/regenerate_example.py")


def parse(files: dict[str, str]) -> dict[str, dict]:
    """``{relative path: object}`` of a rendered bundle's YAML files (one document each)."""
    out = {}
    for rel, text in files.items():
        if rel.endswith(".yaml"):
            docs = list(yaml.safe_load_all(text))
            assert len(docs) == 1, f"{rel} holds {len(docs)} documents"
            out[rel] = docs[0]
    return out


def write(tmp: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text)
    return tmp


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    return example.make_fake_models_tree(tmp_path / "models", example.EXAMPLE_MODELS)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    from deepclf.deploy.tfserving import scan_models

    return scan_models(example.make_fake_models_tree(tmp_path_factory.mktemp("m") / "models", example.EXAMPLE_MODELS))
