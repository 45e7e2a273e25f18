"""benchmarks/overload_floor.py run for real, briefly: ``deepclf serve`` (and one row with extra flags) beside the
two do-nothing servers under the overload generator, on loopback (REST clients only, 1 s per server)."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from deepclf.bench.overload import run_load
from tests.scripts import load_script


@pytest.fixture(scope="module")
def floor() -> ModuleType:
    return load_script("benchmarks/overload_floor.py")


def test_the_floor_table_from_a_short_run(floor, shared_version_dir, tmp_path, capsys):
    out = tmp_path / "floor.json"
    args = ["--model_base_path", str(shared_version_dir.parent), "--mix", "rest", "--seconds", "1"]
    assert floor.main([*args, "--out", str(out), "--also=--max_in_flight=2"]) == 0
    rows = json.loads(out.read_text())
    assert [r["server"] for r in rows] == [*floor.SERVERS, "deepclf serve --max_in_flight=2"]
    for r in rows:
        assert r["mix"] == "rest" and r["other"] == 0 and r["served"] > 0, r
        assert 0 < r["unloaded_p99_ms"] < 1000 and r["served_p50_ms"] <= r["served_p99_ms"], r
    nothing = [r for r in rows if r["server"].startswith("do-nothing")]
    assert all(r["shed"] == 0 for r in nothing), nothing  # no gate: everything is answered
    table = capsys.readouterr().out
    assert table.count("| 64 REST |") == 4 and "served p99 / deepclf unloaded p99" in table


def test_a_model_folder_without_versions_is_refused_by_name(floor, tmp_path, capsys):
    with pytest.raises(SystemExit):
        floor.main(["--model_base_path", str(tmp_path)])
    assert f"{tmp_path} holds no model version" in capsys.readouterr().err


def test_clients_that_do_not_split_over_the_processes_are_refused():
    with pytest.raises(ValueError, match="3 REST and 0 gRPC clients do not split over 2 processes"):
        run_load("http://127.0.0.1:1", "127.0.0.1:1", 3, 0, seconds=1, processes=2)
