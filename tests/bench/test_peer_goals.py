"""The goal table (deepclf.bench.peers.goals) on fixed numbers: ratios, differences, absolute bounds, verdicts,
missing sides (a suite not run), and the extraction of measurements from report-shaped objects."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deepclf.bench.peers import goals
from deepclf.bench.peers.goals import GOALS, Goal, evaluate_goals, goals_markdown, measurements

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
    ("grpc-plain", 8, "rps"): 200.0,  # the concurrency suite
    ("grpc-batching", 8, "rps"): 250.0,
    ("grpc-plain", 8, "p99"): 40.0,
    ("grpc-batching", 8, "p99"): 70.0,
    ("local-client", 1, "p50"): 2.1,  # in process, peers_base
    ("local-client-bytes", 1, "p50"): 3.5,
    ("deepclf-serve", 0, "rss_mb"): 162.5,  # deepclf.bench.server_footprint
    ("deepclf-serve", 0, "start_s"): 1.5,
}
#: What each goal gives on VALUES: (value, met).
EXPECT = {
    "rest_tensor_c1_p50": (0.4, True),  # 20 / 50 <= 0.5
    "rest_tensor_c1_p99": (0.5, False),  # 30 / 60 > 0.4
    "rest_tensor_c4_rps": (3.0, True),  # 60 / 20 >= 2
    "rest_bytes_c1_p50": (3.0, True),  # 6 / 2 <= 3: the bound itself is met
    "rest_bytes_c4_rps": (7.5, False),  # 150 / 20 < 8
    "grpc_tensor_c1_p50": (1.0, True),  # 3 - 2 <= 1.0 ms
    "grpc_bytes_c1_p50": (3.0, False),  # 5 - 2 > 2.5 ms
    "batching_c8_rps": (1.25, False),  # 250 / 200 < 1.3
    "batching_c8_p99": (1.75, False),  # 70 / 40 > 1.5
    "local_tensor_p50": (1.05, True),  # 2.1 / 2.0 <= 1.05: the bound itself
    "local_bytes_p50": (1.4, True),  # 3.5 - 2.1 <= 1.5 ms
    "server_rss": (162.5, False),  # > 150 MB
    "server_start": (1.5, True),  # <= 1.5 s
}


def test_each_goal_is_computed_and_judged() -> None:
    rows = {r.name: r for r in evaluate_goals(VALUES)}
    assert list(rows) == [g.name for g in GOALS]
    assert set(EXPECT) == set(rows)  # every goal of the table is checked here
    for name, (value, met) in EXPECT.items():
        assert rows[name].value == pytest.approx(value), name
        assert rows[name].met is met, name
        assert rows[name].verdict == ("met" if met else "missed")
    assert rows["grpc_bytes_c1_p50"].unit == "ms" and rows["grpc_bytes_c1_p50"].goal == "<= 2.5 ms"
    assert rows["rest_bytes_c4_rps"].unit == "x" and rows["rest_bytes_c4_rps"].goal == ">= 8x"
    assert rows["rest_bytes_c4_rps"].a == 150.0 and rows["rest_bytes_c4_rps"].b == 20.0
    assert rows["batching_c8_rps"].goal == ">= 1.3x" and rows["local_bytes_p50"].goal == "<= 1.5 ms"


def test_absolute_bounds_compare_one_measurement_with_a_constant() -> None:
    rows = {r.name: r for r in evaluate_goals(VALUES)}
    rss, start = rows["server_rss"], rows["server_start"]
    assert (rss.a, rss.b, rss.value, rss.unit, rss.goal) == (162.5, None, 162.5, "MB", "<= 150 MB")
    assert (start.a, start.b, start.unit, start.goal) == (1.5, None, "s", "<= 1.5 s")
    faster = {**VALUES, ("deepclf-serve", 0, "rss_mb"): 149.9, ("deepclf-serve", 0, "start_s"): 1.51}
    rows = {r.name: r for r in evaluate_goals(faster)}
    assert rows["server_rss"].verdict == "met" and rows["server_start"].verdict == "missed"
    floor = Goal("min_rps", "at least", ("x", 4, "rps"), None, None, ">=", 100.0)
    assert [r.verdict for r in evaluate_goals({("x", 4, "rps"): 99.0}, [floor])] == ["missed"]
    assert floor.unit == "req/s" and floor.goal_text == ">= 100 req/s"


@pytest.mark.parametrize(
    ("b", "op", "cmp"),
    [(None, "/", "<="), (("x", 1, "p50"), None, "<="), (("x", 1, "p50"), "*", "<="), (None, None, "<")],
)
def test_a_malformed_goal_is_refused(b: goals.Key | None, op: str | None, cmp: str) -> None:
    with pytest.raises(ValueError, match="op must be"):
        Goal("bad", "bad", ("x", 1, "p50"), b, op, cmp, 1.0)


@pytest.mark.parametrize(
    ("suite_not_run", "na"),
    [
        ("concurrency", {"batching_c8_rps", "batching_c8_p99"}),
        ("footprint", {"server_rss", "server_start"}),
        ("peers", set(EXPECT) - {"batching_c8_rps", "batching_c8_p99"}),
    ],
)
def test_goals_of_a_suite_not_run_are_not_applicable(suite_not_run: str, na: set[str]) -> None:
    of_suite = {
        "concurrency": lambda k: k[0].startswith("grpc-"),
        "footprint": lambda k: k[0] == goals.SERVER,
        "peers": lambda k: not k[0].startswith("grpc-"),  # peers_* reports and the footprint
    }[suite_not_run]
    rows = evaluate_goals({k: v for k, v in VALUES.items() if not of_suite(k)})
    assert {r.name for r in rows if r.verdict == "n/a"} == na
    assert all(r.value is None and r.met is None for r in rows if r.name in na)
    assert all(r.verdict in ("met", "missed") for r in rows if r.name not in na)


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
    rss = "| deepclf serve (defaults, fp32): RSS after 1,000 mixed requests | 162.50 | - | 162.50 MB | <= 150 MB |"
    assert rss + " **missed** |" in lines
    empty = goals_markdown(evaluate_goals({}))  # nothing measured: every row n/a, nothing crashes
    assert empty.count("**n/a**") == len(GOALS) and "| - | - | - |" in empty


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
