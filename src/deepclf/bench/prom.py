"""The server's own view of a benchmark: scrape its Prometheus metrics before and after, and diff them.

TF Serving (``--monitoring_config_file``) and our edge server export, at ``/monitoring/prometheus/metrics``::

    :tensorflow:serving:request_count{model_name="flowers",status="OK"} 42
    :tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="10"} 0
    :tensorflow:serving:request_latency_sum{...} 123456      # microseconds
    :tensorflow:serving:request_latency_count{...} 42

We match families by suffix (``request_count``, ``request_latency``) so either server's prefix works, keep only
samples of the benchmarked model, and turn the difference of two scrapes into request counts and latency
percentiles interpolated inside histogram buckets (as PromQL's ``histogram_quantile`` does)::

    before = scrape(url); ...; after = scrape(url)
    server_view(before, after, model="flowers")   # {'requests': 500, 'ok': 500, 'latency_p50_ms': 3.1, ...}
"""

from __future__ import annotations

import math
import re
import urllib.request
from collections import defaultdict
from typing import Any

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
#: One selected series: its name, then its sorted label pairs.
Series = tuple[str, *tuple[tuple[str, str], ...]]

#: The units TF Serving records latency in (microseconds); a ``_seconds`` family is read as seconds.
_US_TO_MS = 1e-3


def scrape(url: str, *, timeout: float = 5.0) -> Samples:
    """Fetch and parse a Prometheus text exposition; raises ``OSError``/``ValueError`` if it cannot."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the user's own server URL
        text = resp.read().decode("utf-8", errors="replace")
    return parse(text)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(value: str) -> str:
    return value.replace("\\\\", "\0").replace('\\"', '"').replace("\\n", "\n").replace("\0", "\\")


def parse(text: str) -> Samples:
    """Samples of a Prometheus text exposition: ``{(name, sorted label pairs): value}``.

    Names are kept exactly as written (``prometheus_client``'s parser would rename a counter ``x`` to
    ``x_total``); comments, blank lines and lines that are not samples are skipped.
    """
    out: Samples = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels_text, value = m.groups()
        labels = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(labels_text or "")))
        try:
            out[(name, labels)] = float(value)
        except ValueError:
            continue
    return out


def _select(samples: Samples, suffix: str, model: str | None) -> dict[Series, float]:
    out: dict[Series, float] = {}
    for (name, labels), value in samples.items():
        if not name.endswith(suffix):
            continue
        lab = dict(labels)
        if model is not None and lab.get("model_name", lab.get("model", model)) != model:
            continue
        out[(name, *labels)] = value
    return out


def _diff(before: Samples, after: Samples, suffix: str, model: str | None) -> dict[Series, float]:
    b, a = _select(before, suffix, model), _select(after, suffix, model)
    return {k: v - b.get(k, 0.0) for k, v in a.items()}


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Quantile ``q`` (0..1) from cumulative ``(upper_bound, count)`` buckets, linear inside a bucket."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound  # the open-ended bucket: the best we can say is its lower edge
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return buckets[-1][0]


def server_view(before: Samples, after: Samples, *, model: str | None = None) -> dict[str, Any]:
    """Requests the server counted between two scrapes, and its latency histogram's mean and percentiles (ms)."""
    view: dict[str, Any] = {}
    # prometheus_client names a counter ``x_total``; TF Serving writes ``x``. Either is a request count.
    counts = _diff(before, after, "request_count", model) or _diff(before, after, "request_count_total", model)
    if counts:
        view["requests"] = round(sum(counts.values()))
        by_status: dict[str, float] = defaultdict(float)
        for key, v in counts.items():
            by_status[dict(key[1:]).get("status", "?")] += v
        view["by_status"] = {k: round(v) for k, v in sorted(by_status.items())}
    for family in ("request_latency", "runtime_latency"):
        buckets: dict[float, float] = defaultdict(float)
        total = n = 0.0
        seconds = False
        for key, v in _diff(before, after, f"{family}_bucket", model).items():
            le = dict(key[1:]).get("le")
            if le is not None:
                buckets[float(le)] += v
                seconds = seconds or key[0].endswith("seconds_bucket")
        total += sum(_diff(before, after, f"{family}_sum", model).values())
        n += sum(_diff(before, after, f"{family}_count", model).values())
        if not n:
            # a family named ..._seconds: the suffix match above missed it; try again with that unit
            n += sum(_diff(before, after, f"{family}_seconds_count", model).values())
            total += sum(_diff(before, after, f"{family}_seconds_sum", model).values())
            seconds = seconds or n > 0
        if not n:
            continue
        if not buckets:
            for key, v in _diff(before, after, f"{family}_seconds_bucket", model).items():
                le = dict(key[1:]).get("le")
                if le is not None:
                    buckets[float(le)] += v
        scale = 1e3 if seconds else _US_TO_MS
        b = sorted(buckets.items())
        view[family] = {
            "count": round(n),
            "mean_ms": total / n * scale,
            "p50_ms": histogram_quantile(0.50, b) * scale,
            "p90_ms": histogram_quantile(0.90, b) * scale,
            "p99_ms": histogram_quantile(0.99, b) * scale,
        }
    return view
