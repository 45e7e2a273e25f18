"""The performance goals the peers suite checks: ratios and differences of measured numbers, each met or missed.

Every goal compares two measurements ``(target, concurrency, metric)`` from the same run (metric ``p50``/``p99``
in ms or ``rps``) with ``/`` (a ratio, ``x``) or ``-`` (a difference, ``ms``) against a bound::

    values = measurements(report_a, report_b)       # {("deepclf", 1, "p50"): 22.7, ...}
    rows = evaluate_goals(values)                   # one GoalResult per goal; value None if a side is missing
    print(goals_markdown(rows))

Target names are the ones the suite gives (``benchmarks/run.py``, ``run_peers``): ``deepclf``/``kserve`` (REST
row tensor, ``PeerTarget``), ``deepclf-rest-bytes``, ``deepclf-grpc-tensor``, ``deepclf-grpc-bytes`` (our
server's ``rest://``/``grpc://`` targets) and ``litert-raw`` (the bare ``ai_edge_litert`` interpreter in process,
single-stream batch 1, with the interpreter threads our server uses by default). Only the standard library here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: ``(target, concurrency, metric)``; metric is ``p50``/``p99`` (ms) or ``rps`` (requests/s).
Key = tuple[str, int, str]

OURS_ROW = "deepclf"
KSERVE_ROW = "kserve"
OURS_REST_BYTES = "deepclf-rest-bytes"
OURS_GRPC_TENSOR = "deepclf-grpc-tensor"
OURS_GRPC_BYTES = "deepclf-grpc-bytes"
BARE = "litert-raw"


@dataclass(frozen=True)
class Goal:
    """``a op b`` must be ``cmp bound`` (``op`` ``/`` gives a ratio in x, ``-`` a difference in ms)."""

    name: str
    label: str
    a: Key
    b: Key
    op: str
    cmp: str
    bound: float

    @property
    def unit(self) -> str:
        return "x" if self.op == "/" else "ms"

    @property
    def goal_text(self) -> str:
        return f"{self.cmp} {self.bound:g}{' ' if self.unit == 'ms' else ''}{self.unit}"


GOALS: tuple[Goal, ...] = (
    Goal(
        "rest_tensor_c1_p50",
        "REST row tensor c=1: our p50 / KServe p50",
        (OURS_ROW, 1, "p50"),
        (KSERVE_ROW, 1, "p50"),
        "/",
        "<=",
        0.5,
    ),
    Goal(
        "rest_tensor_c1_p99",
        "REST row tensor c=1: our p99 / KServe p99",
        (OURS_ROW, 1, "p99"),
        (KSERVE_ROW, 1, "p99"),
        "/",
        "<=",
        0.4,
    ),
    Goal(
        "rest_tensor_c4_rps",
        "REST row tensor c=4: our req/s / KServe req/s",
        (OURS_ROW, 4, "rps"),
        (KSERVE_ROW, 4, "rps"),
        "/",
        ">=",
        2.0,
    ),
    Goal(
        "rest_bytes_c1_p50",
        "REST b64 image c=1: our p50 / bare interpreter p50",
        (OURS_REST_BYTES, 1, "p50"),
        (BARE, 1, "p50"),
        "/",
        "<=",
        3.0,
    ),
    Goal(
        "rest_bytes_c4_rps",
        "REST b64 image c=4: our req/s / KServe row-tensor c=4 req/s",
        (OURS_REST_BYTES, 4, "rps"),
        (KSERVE_ROW, 4, "rps"),
        "/",
        ">=",
        8.0,
    ),
    Goal(
        "grpc_tensor_c1_p50",
        "gRPC tensor_content c=1: our p50 - bare interpreter p50",
        (OURS_GRPC_TENSOR, 1, "p50"),
        (BARE, 1, "p50"),
        "-",
        "<=",
        1.0,
    ),
    Goal(
        "grpc_bytes_c1_p50",
        "gRPC image bytes c=1: our p50 - bare interpreter p50",
        (OURS_GRPC_BYTES, 1, "p50"),
        (BARE, 1, "p50"),
        "-",
        "<=",
        2.5,
    ),
)


@dataclass(frozen=True)
class GoalResult:
    """One goal in one run: both sides, the value (``None`` when a side was not measured) and the verdict."""

    name: str
    label: str
    a: float | None
    b: float | None
    value: float | None
    unit: str
    goal: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return "n/a" if self.met is None else ("met" if self.met else "missed")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def evaluate_goals(values: Mapping[Key, float | None], goals: Iterable[Goal] = GOALS) -> list[GoalResult]:
    """Each goal's value from ``values``; a missing or unusable side (none, or a zero divisor) gives ``n/a``."""
    out = []
    for g in goals:
        a, b = values.get(g.a), values.get(g.b)
        value: float | None = None
        if a is not None and b is not None and not (g.op == "/" and b == 0):
            value = a / b if g.op == "/" else a - b
        met = None if value is None else (value <= g.bound if g.cmp == "<=" else value >= g.bound)
        out.append(GoalResult(g.name, g.label, a, b, value, g.unit, g.goal_text, met))
    return out


def measurements(*reports: Any) -> dict[Key, float]:
    """``{(target, concurrency, metric): value}`` from ``LatencyReport``-like objects (``targets`` of runs with
    ``results``); results without a successful request are left out. The first result per key wins."""
    out: dict[Key, float] = {}
    for rep in reports:
        if rep is None:
            continue
        for t in rep.targets:
            for r in t.results:
                if not r.count:
                    continue
                for metric, v in (("p50", r.latency.p50), ("p99", r.latency.p99), ("rps", r.throughput_rps)):
                    out.setdefault((t.name, int(r.concurrency), metric), float(v))
    return out


def _num(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:.2f}{unit}"


def goals_markdown(rows: Sequence[GoalResult]) -> str:
    """The goal table: what is compared, both sides, the value, the goal and met/missed."""
    lines = ["| goal | ours | baseline | value | goal | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        unit = "x" if r.unit == "x" else " ms"
        lines.append(f"| {r.label} | {_num(r.a)} | {_num(r.b)} | {_num(r.value, unit)} | {r.goal} | **{r.verdict}** |")
    return "\n".join(lines)
