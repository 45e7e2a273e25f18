"""benchmarks/run.py's goal plumbing without running a benchmark: the batching parameters file it gives the
batching server, and the goal table it writes from whatever suites ran (the others' goals n/a)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from deepclf.bench.env import environment
from deepclf.bench.peers import goals
from deepclf.bench.server_footprint import ServerFootprint
from tests.scripts import load_script


@pytest.fixture(scope="module")
def run() -> ModuleType:
    return load_script("benchmarks/run.py")


def test_batching_parameters_file_is_what_the_server_reads(run: ModuleType) -> None:
    pytest.importorskip("deepclf.serving.batching")
    from deepclf.serving.batching import parse_batching_parameters

    params = parse_batching_parameters(run.batching_parameters_text(run.BATCHING_PARAMETERS))
    params.validate()  # the server refuses an allowed_batch_sizes that does not end at max_batch_size
    assert params.max_batch_size == 8 and params.allowed_batch_sizes == (1, 2, 4, 8)
    assert params.batch_timeout_micros == run.BATCHING_PARAMETERS["batch_timeout_micros"] <= 2000  # "short"
    assert params.num_batch_threads == run.BATCHING_PARAMETERS["num_batch_threads"] >= 1


def _concurrency_report() -> SimpleNamespace:
    def target(name: str, rps: float, p99: float) -> SimpleNamespace:
        lat = SimpleNamespace(p50=p99 / 2, p99=p99)
        r = SimpleNamespace(concurrency=8, count=100, errors=0, latency=lat, throughput_rps=rps, scenario="concurrency")
        return SimpleNamespace(name=name, results=[r], status="ok", error=None)

    return SimpleNamespace(targets=[target(goals.GRPC_PLAIN, 200.0, 40.0), target(goals.GRPC_BATCHING, 280.0, 50.0)])


def test_goals_from_the_concurrency_suite_alone(run: ModuleType, tmp_path: Path) -> None:
    reports: dict = {
        "concurrency": _concurrency_report(),
        "servers": {"batching": {"batching_parameters": dict(run.BATCHING_PARAMETERS)}},
    }
    run.write_goals(tmp_path, reports)
    saved = json.loads((tmp_path / "peers_goals.json").read_text())
    verdicts = {g["name"]: g["verdict"] for g in saved["goals"]}
    assert verdicts["batching_c8_rps"] == "met"  # 280 / 200 = 1.4
    assert verdicts["batching_c8_p99"] == "met"  # 50 / 40 = 1.25
    assert {n for n, v in verdicts.items() if v == "n/a"} == {g.name for g in goals.GOALS} - {
        "batching_c8_rps",
        "batching_c8_p99",
    }
    assert saved["batching_parameters"]["allowed_batch_sizes"] == [1, 2, 4, 8]
    assert saved["server_footprint"] is None
    args = argparse.Namespace(duration=1.0, threads=None, rate=20.0, model=["augmented"])
    text = run.summary_markdown(reports, environment(), "results/x", args)
    assert "## Performance goals" in text and "allowed_batch_sizes 1/2/4/8" in text
    assert (
        "| gRPC c=8: batching server req/s / plain server req/s | 280.00 | 200.00 | 1.40x | >= 1.3x | **met** |" in text
    )


def test_goals_with_a_footprint(run: ModuleType, tmp_path: Path) -> None:
    fp = ServerFootprint(["deepclf", "serve"], start_s=1.2, rss_mb=151.0, rss_available_mb=120.0, requests=1000)
    reports: dict = {"server_footprint": fp}
    run.write_goals(tmp_path, reports)
    rows = {r.name: r for r in reports["peers_goals"]}
    assert rows["server_start"].verdict == "met" and rows["server_rss"].verdict == "missed"
    assert rows["batching_c8_rps"].verdict == "n/a"
    saved = json.loads((tmp_path / "peers_goals.json").read_text())
    assert saved["server_footprint"]["rss_mb"] == 151.0


def test_run_pages_and_the_list_of_runs(run: ModuleType, tmp_path: Path) -> None:
    env = {"date": "2026-12-02T10:00:00+00:00"}
    page = run.run_page("## Formats\n\n| a |\n", env, ["--quick"], "vm-20261202")
    assert page.startswith("# 2026-12-02: benchmark run `vm-20261202`\n")
    assert "python benchmarks/run.py --quick" in page and page.endswith("| a |\n")
    for name, date in (("vm-20261202", "2026-12-02T10:00"), ("vm-20261130", "2026-11-30T10:00")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.md").write_text(run.run_page("", {"date": date}, [], name))
        (tmp_path / name / "settings.json").write_text("{}")
    (tmp_path / "2026-12-03-other").mkdir()  # a results page that is not a run of run.py: not listed
    (tmp_path / "2026-12-03-other" / "index.md").write_text("# 2026-12-03: something else\n")
    index = tmp_path / "index.md"
    index.write_text(f"# Results\n\n{run.MARK_START}\nold\n{run.MARK_END}\n\nafter\n")
    run.update_marked(index, run.runs_list(tmp_path))
    assert index.read_text() == (
        f"# Results\n\n{run.MARK_START}\n"
        "- [2026-12-02: benchmark run `vm-20261202`](vm-20261202/index.md)\n"
        "- [2026-11-30: benchmark run `vm-20261130`](vm-20261130/index.md)\n"
        f"{run.MARK_END}\n\nafter\n"
    )
