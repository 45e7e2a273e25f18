"""``benchmarks/models.py``, the command that fills the README's model table: run for real, briefly.

The fast tests check the pieces that turn measurements into the page (the table, the goals, the README section);
the slow one runs the whole script on the generated photos with one epoch per model (``--epochs 1``, a quick check:
the table itself needs the default schedules) and a README copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def models_script() -> Any:
    return load_script("benchmarks/models.py")


def _row(acc: float, int8_acc: float, fp32_acc: float, int8_bytes: int, p50: float, wall: float) -> dict[str, Any]:
    variants = {v: {"size_bytes": 4_000_000, "accuracy": fp32_acc} for v in ("fp32", "fp16", "dynamic")}
    variants["int8"] = {"size_bytes": int8_bytes, "accuracy": int8_acc}
    return {
        "val_accuracy": acc,
        "params": 1_000_000,
        "img_size": [128, 128],
        "epochs": 30,
        "variants": variants,
        "latency": {v: {"p50_ms": p50} for v in variants},
        "train": {"wall_s": wall, "load_average": {"mean": 1.5}},
    }


def test_goals_are_judged_on_the_run_s_numbers(models_script: Any) -> None:
    basic = _row(0.62, 0.61, 0.62, 4_000_000, 2.4, 300)
    good = models_script.goals({"basic": basic, "edge": _row(0.83, 0.825, 0.83, 1_300_000, 1.9, 1400)})
    assert [g["met"] for g in good] == [True, True, True, True, True]
    bad = models_script.goals({"basic": basic, "edge": _row(0.79, 0.81, 0.79, 2_100_000, 2.5, 1600)})
    assert [g["met"] for g in bad] == [False, False, False, False, False]
    assert bad[2]["measured"] == "0.810 vs 0.790"  # int8 off by 2 points, either way, misses
    assert models_script.goals({"basic": basic}) == []


def test_table_and_readme_section(models_script: Any, tmp_path: Path) -> None:
    rows = {"basic": _row(0.62, 0.61, 0.62, 4_000_000, 2.4, 300), "edge": _row(0.83, 0.825, 0.83, 1_300_000, 1.9, 1400)}
    text = models_script.table(rows)
    head = "| model | validation accuracy | parameters | size fp32 / fp16 / dynamic / int8 | LiteRT p50 fp32 / fp16"
    assert text.splitlines()[0].startswith(head)
    assert (
        "| `edge` (128x128, 30 epochs) | 83.0% | 1,000,000 | 4.0 / 4.0 / 4.0 / 1.3 MB | "
        "1.90 / 1.90 / 1.90 / 1.90 ms | 82.5% | 23.3 min (load 1.5) |"
    ) in text
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- models:start -->\nold\n<!-- models:end -->\nafter\n")
    page = {
        "date": "2026-12-07",
        "commit": "abc1234",
        "environment_line": "cpu",
        "command": "python benchmarks/models.py",
    }
    models_script.update_readme(readme, rows, page, "docs/results/2026-12-07-models/index.md")
    new = readme.read_text()
    assert "old" not in new and new.endswith("<!-- models:end -->\nafter\n") and "| `edge` (128x128" in new
    assert "[results page](docs/results/2026-12-07-models/index.md)" in new
    with pytest.raises(SystemExit, match="no <!-- models:start -->"):
        (tmp_path / "plain.md").write_text("# nothing\n")
        models_script.update_readme(tmp_path / "plain.md", rows, page, "x")


def test_the_page_is_listed_once_in_the_results_index_and_the_nav(models_script: Any, tmp_path: Path) -> None:
    index, mkdocs = tmp_path / "index.md", tmp_path / "mkdocs.yml"
    index.write_text("# Results\n\n## Other runs\n\nA new page here needs a line.\n\n- [old](old.md)\n")
    mkdocs.write_text("nav:\n  - Results:\n      - results/index.md\n      - old: results/old.md\n")
    for _ in range(2):
        models_script.list_page(index, mkdocs, "2026-12-07-models/index.md", "2026-12-07")
    assert index.read_text() == (
        "# Results\n\n## Other runs\n\nA new page here needs a line.\n\n"
        "- [2026-12-07: the model table: basic, augmented, edge](2026-12-07-models/index.md)\n- [old](old.md)\n"
    )
    assert mkdocs.read_text() == (
        "nav:\n  - Results:\n      - results/index.md\n"
        "      - 2026-12-07 model table: results/2026-12-07-models/index.md\n      - old: results/old.md\n"
    )


@pytest.mark.slow
def test_the_script_trains_converts_measures_and_writes_the_page(
    models_script: Any, gen_photos: Path, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- models:start -->\n<!-- models:end -->\n")
    out = tmp_path / "results"
    argv = ["--data", str(gen_photos), "--models", "basic,edge", "--epochs", "1", "--rounds", "1"]
    argv += ["--seconds", "0.2", "--work", str(tmp_path / "work"), "--out", str(out), "--readme", str(readme)]
    assert models_script.main(argv) == 0
    page = json.loads((out / "models.json").read_text())
    assert set(page["models"]) == {"basic", "edge"}
    edge = page["models"]["edge"]
    assert edge["img_size"] == [112, 112] and edge["epochs"] == 1 and edge["validation_images"] == 40
    assert set(edge["variants"]) == set(edge["latency"]) == {"fp32", "fp16", "dynamic", "int8"}
    assert all(edge["latency"][v]["p50_ms"] > 0 for v in edge["latency"])
    assert edge["train"]["wall_s"] > 0 and edge["train"]["cpu_s"] > 0 and edge["train"]["load_average"]["samples"] >= 2
    assert len(page["goals"]) == 5
    assert "the model table" in (out / "index.md").read_text().splitlines()[0]
    assert (out / "edge_curves.png").is_file() and "| `basic` (180x180, 1 epochs)" in readme.read_text()
    assert "--epochs 1" in page["command"]
