"""benchmarks/overload_goals.py run for real, briefly (1 s per load, goal 4 left out): ``hey`` and our clients
against ``deepclf serve`` on the session's model, the goal table printed and the results page written. Whether a
goal is met is the benchmark's business (timings on a shared machine); this checks that every goal is measured
from real answers. Skipped without ``hey`` (``apt-get install hey``)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.scripts import load_script

pytestmark = pytest.mark.skipif(shutil.which("hey") is None, reason="needs hey: apt-get install hey")


def test_the_goal_table_from_a_short_run(shared_version_dir, tmp_path, capsys):
    goals = load_script("benchmarks/overload_goals.py")
    out = tmp_path / "results"
    args = ["--model_base_path", str(shared_version_dir.parent), "--seconds", "1", "--skip-baseline"]
    assert goals.main([*args, "--out", str(out)]) == 0
    report = json.loads((out / "overload_goals.json").read_text())
    assert report["capacity"]["served_per_s"] > 0 and report["capacity"]["statuses"] == {
        "200": report["capacity"]["statuses"]["200"]
    }
    assert set(report["retry_at_once"]["statuses"]) <= {"200", "503", "504"}, report["retry_at_once"]
    for kind in ("rest", "grpc"):
        clients = report[f"clients_{kind}"]
        assert clients["outcomes"]["ok"] == clients["expected"] == clients["server_served"], clients
        assert clients["cpu_s"]["server"] > 0 and clients["cpu_s"]["load_generator"] > 0, clients  # where CPU went
    burst = report["burst"]
    assert burst["healthz"]["polls"] > 0 and burst["healthz"]["not_200"] == 0, burst
    assert 0 < burst["rss_before_mb"] <= burst["rss_peak_mb"], burst
    names = [g["name"] for g in report["goals"]]
    assert len(names) == 9 and all(isinstance(g["met"], bool) for g in report["goals"]), report["goals"]
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == len(names) + 1 and "64 retry-at-once clients (hey): goodput" in table  # + the header
    assert (out / "index.md").read_text().startswith("# Overload goals (issue 22):")
