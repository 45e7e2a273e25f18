"""The goal table of the peers suite (deepclf.bench.peers.goals) on fixed numbers: ratios, differences, verdicts,
missing sides, and the extraction of measurements from report-shaped objects."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deepclf.bench.peers import goals
from deepclf.bench.peers.goals import GOALS, evaluate_goals, goals_markdown, measurements

VALUES = {
    ("deepclf", 1, "p50"): 20.0,
    ("kserve", 1, "p50"): 50.0,
    ("deepclf", 1, "p99"): 30.0,
    ("kserve", 1, "p99"): 60.0,
    ("deepclf", 4, "rps"): 60.0,
    ("kserve", 4, "rps"): 20.0,
    ("deepclf-rest-bytes", 1, "p50"): 6.0,
    ("deepclf-rest-bytes", 4, "rps"): 150.0,
    ("litert-raw", 1, "p50"): 2.0,
    ("deepclf-grpc-tensor", 1, "p50"): 3.0,
    ("deepclf-grpc-bytes", 1, "p50"): 5.0,
}


def test_each_goal_is_computed_and_judged() -> None:
    rows = {r.name: r for r in evaluate_goals(VALUES)}
    assert list(rows) == [g.name for g in GOALS]
    expect = {
        "rest_tensor_c1_p50": (0.4, True),  # 20 / 50 <= 0.5
        "rest_tensor_c1_p99": (0.5, False),  # 30 / 60 > 0.4
        "rest_tensor_c4_rps": (3.0, True),  # 60 / 20 >= 2
        "rest_bytes_c1_p50": (3.0, True),  # 6 / 2 <= 3: the bound itself is met
        "rest_bytes_c4_rps": (7.5, False),  # 150 / 20 < 8
        "grpc_tensor_c1_p50": (1.0, True),  # 3 - 2 <= 1.0 ms
        "grpc_bytes_c1_p50": (3.0, False),  # 5 - 2 > 2.5 ms
    }
    for name, (value, met) in expect.items():
        assert rows[name].value == pytest.approx(value), name
        assert rows[name].met is met, name
        assert rows[name].verdict == ("met" if met else "missed")
    assert rows["grpc_bytes_c1_p50"].unit == "ms" and rows["grpc_bytes_c1_p50"].goal == "<= 2.5 ms"
    assert rows["rest_bytes_c4_rps"].unit == "x" and rows["rest_bytes_c4_rps"].goal == ">= 8x"
    assert rows["rest_bytes_c4_rps"].a == 150.0 and rows["rest_bytes_c4_rps"].b == 20.0


def test_a_missing_side_or_zero_divisor_is_not_applicable() -> None:
    values = {k: v for k, v in VALUES.items() if k[0] != "kserve"}  # KServe skipped
    values[("litert-raw", 1, "p50")] = 0.0
    rows = {r.name: r for r in evaluate_goals(values)}
    assert rows["rest_tensor_c1_p50"].value is None and rows["rest_tensor_c1_p50"].verdict == "n/a"
    assert rows["rest_bytes_c1_p50"].verdict == "n/a"  # divided by zero
    assert rows["grpc_tensor_c1_p50"].value == pytest.approx(3.0)  # a difference with zero is fine
    assert rows["rest_tensor_c1_p50"].to_dict()["verdict"] == "n/a"


def test_markdown_table_has_one_row_per_goal() -> None:
    text = goals_markdown(evaluate_goals(VALUES))
    lines = text.splitlines()
    assert lines[0].startswith("| goal |") and len(lines) == 2 + len(GOALS)
    assert "| REST row tensor c=1: our p50 / KServe p50 | 20.00 | 50.00 | 0.40x | <= 0.5x | **met** |" in lines
    assert (
        "| gRPC image bytes c=1: our p50 - bare interpreter p50 | 5.00 | 2.00 | 3.00 ms | <= 2.5 ms | **missed** |"
        in (lines)
    )


def _report(name: str, *results: tuple[int, int, float, float, float]) -> SimpleNamespace:
    rs = [
        SimpleNamespace(concurrency=c, count=n, latency=SimpleNamespace(p50=p50, p99=p99), throughput_rps=rps)
        for c, n, p50, p99, rps in results
    ]
    return SimpleNamespace(targets=[SimpleNamespace(name=name, results=rs)])


def test_measurements_from_reports() -> None:
    a = _report(goals.OURS_ROW, (1, 100, 20.0, 30.0, 45.0), (4, 0, 0.0, 0.0, 0.0))  # c=4 had no success
    b = _report(goals.BARE, (1, 500, 2.0, 4.0, 480.0))
    got = measurements(a, None, b)
    assert got[(goals.OURS_ROW, 1, "p50")] == 20.0
    assert got[(goals.OURS_ROW, 1, "p99")] == 30.0
    assert got[(goals.OURS_ROW, 1, "rps")] == 45.0
    assert (goals.OURS_ROW, 4, "rps") not in got
    assert got[(goals.BARE, 1, "p50")] == 2.0
