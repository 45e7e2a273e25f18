"""The project's performance goals: measured numbers from one ``make bench`` run, each goal met or missed.

Every measurement is keyed ``(target, concurrency, metric)``: metric ``p50``/``p99`` (ms) or ``rps`` (req/s) of a
latency run, or ``rss_mb`` (MB) / ``start_s`` (s) of our server's footprint (concurrency ``0``: not a load level).
A goal compares two measurements with ``/`` (a ratio, ``x``) or ``-`` (a difference, in the metric's unit), or one
measurement alone (``b=None``, ``op=None``: an absolute bound in its unit), against a bound::

    values = measurements(report_a, report_b)       # {("deepclf", 1, "p50"): 22.7, ...}
    values.update(footprint.measurements())        # deepclf.bench.server_footprint: rss_mb, start_s
    rows = evaluate_goals(values)                   # one GoalResult per goal; value None if a side is missing
    print(goals_markdown(rows))

Target names are the ones ``benchmarks/run.py`` gives: from the peers suite (``run_peers``) ``deepclf``/``kserve``
(REST row tensor, ``PeerTarget``), ``deepclf-rest-bytes``, ``deepclf-grpc-tensor``, ``deepclf-grpc-bytes`` (our
server's ``rest://``/``grpc://`` targets), ``litert-raw`` (the bare ``ai_edge_litert`` interpreter in process,
single-stream batch 1, with the interpreter threads our server uses by default), ``local-client`` and
``local-client-bytes`` (``LocalClient.predict`` on the tensor and on the image-bytes signature, same model and
threads) and ``deepclf-serve`` (start time and memory of ``deepclf serve`` with default flags); from the
concurrency suite ``grpc-plain`` and ``grpc-batching`` (gRPC tensor, closed loop, unbatched and batching server).
A goal whose suite did not run is ``n/a``. Only the standard library here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: ``(target, concurrency, metric)``; metric is ``p50``/``p99`` (ms), ``rps`` (requests/s), ``rss_mb`` or ``start_s``.
Key = tuple[str, int, str]

#: The unit of each metric (a difference or an absolute bound is in it; a ratio is in ``x``).
METRIC_UNITS = {"p50": "ms", "p99": "ms", "rps": "req/s", "rss_mb": "MB", "start_s": "s"}

OURS_ROW = "deepclf"
KSERVE_ROW = "kserve"
OURS_REST_BYTES = "deepclf-rest-bytes"
OURS_GRPC_TENSOR = "deepclf-grpc-tensor"
OURS_GRPC_BYTES = "deepclf-grpc-bytes"
BARE = "litert-raw"
LOCAL_TENSOR = "local-client"
LOCAL_BYTES = "local-client-bytes"
GRPC_PLAIN = "grpc-plain"
GRPC_BATCHING = "grpc-batching"
SERVER = "deepclf-serve"
#: The concurrency of measurements that are not made under load (the server footprint).
NO_LOAD = 0

_OPS = ("/", "-", None)
_CMPS = ("<=", ">=")


@dataclass(frozen=True)
class Goal:
    """``a op b`` (or ``a`` alone when ``b`` and ``op`` are ``None``) must be ``cmp bound``.

    ``op`` ``/`` gives a ratio in x, ``-`` a difference in the metric's unit (``ms`` for latencies)::

        Goal("rss", "server RSS", ("deepclf-serve", 0, "rss_mb"), None, None, "<=", 150.0).goal_text  # "<= 150 MB"
    """

    name: str
    label: str
    a: Key
    b: Key | None
    op: str | None
    cmp: str
    bound: float

    def __post_init__(self) -> None:
        # A goal table is code: a typo here must fail at import, not print a wrong verdict.
        if self.op not in _OPS or self.cmp not in _CMPS or (self.b is None) != (self.op is None):
            raise ValueError(f"goal {self.name!r}: op must be '/' or '-' with a b key, or None without one; cmp <=/>=")

    @property
    def unit(self) -> str:
        return "x" if self.op == "/" else METRIC_UNITS.get(self.a[2], "")

    @property
    def goal_text(self) -> str:
        return f"{self.cmp} {self.bound:g}{_sep(self.unit)}{self.unit}"


def _sep(unit: str) -> str:
    return "" if unit in ("x", "") else " "


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
    Goal(
        "batching_c8_rps",
        "gRPC c=8: batching server req/s / plain server req/s",
        (GRPC_BATCHING, 8, "rps"),
        (GRPC_PLAIN, 8, "rps"),
        "/",
        ">=",
        1.3,
    ),
    Goal(
        "batching_c8_p99",
        "gRPC c=8: batching server p99 / plain server p99",
        (GRPC_BATCHING, 8, "p99"),
        (GRPC_PLAIN, 8, "p99"),
        "/",
        "<=",
        1.5,
    ),
    Goal(
        "local_tensor_p50",
        "in process: LocalClient.predict p50 / bare interpreter p50",
        (LOCAL_TENSOR, 1, "p50"),
        (BARE, 1, "p50"),
        "/",
        "<=",
        1.05,
    ),
    Goal(
        "local_bytes_p50",
        "in process: LocalClient image bytes p50 - tensor p50",
        (LOCAL_BYTES, 1, "p50"),
        (LOCAL_TENSOR, 1, "p50"),
        "-",
        "<=",
        1.5,
    ),
    Goal(
        "server_rss",
        "deepclf serve (defaults, fp32): RSS after 1,000 mixed requests",
        (SERVER, NO_LOAD, "rss_mb"),
        None,
        None,
        "<=",
        150.0,
    ),
    Goal(
        "server_start",
        "deepclf serve (defaults, fp32): start to AVAILABLE",
        (SERVER, NO_LOAD, "start_s"),
        None,
        None,
        "<=",
        1.5,
    ),
)


@dataclass(frozen=True)
class GoalResult:
    """One goal in one run: both sides (``b`` is ``None`` for an absolute bound), the value (``None`` when a side
    was not measured) and the verdict."""

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
        a = values.get(g.a)
        b = values.get(g.b) if g.b is not None else None
        value: float | None = None
        if g.op is None:
            value = a
        elif a is not None and b is not None and not (g.op == "/" and b == 0):
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
    return "-" if v is None else f"{v:.2f}{_sep(unit)}{unit}"


def goals_markdown(rows: Sequence[GoalResult]) -> str:
    """The goal table: what is compared, both sides (baseline ``-`` for an absolute bound), the value, the goal
    and met/missed/n/a."""
    lines = ["| goal | ours | baseline | value | goal | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.label} | {_num(r.a)} | {_num(r.b)} | {_num(r.value, r.unit)} | {r.goal} | **{r.verdict}** |"
        )
    return "\n".join(lines)
