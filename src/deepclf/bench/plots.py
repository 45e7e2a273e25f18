"""PNG plots of benchmark reports (matplotlib with the Agg backend, imported only when a plot is drawn).

* ``latency_distribution.png``: per target, the single-stream (else first) latency samples as box plots,
  whiskers at p1/p99, log scale;
* ``concurrency.png``: throughput and p99 against concurrency, one line per target;
* ``size_latency_accuracy.png``: model size against p50 latency, each point labelled with its top-1 accuracy
  (needs a latency and a parity report of the same variants).

Every file is written through ``deepclf.fsutil.atomic_output_file``::

    latency_plots(report, "results/")          # -> [Path('results/latency_distribution.png'), ...]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from deepclf.fsutil import atomic_output_file

# What the plots read of a latency and a parity report, as protocols: the reports (deepclf.bench.latency and
# .parity) draw their plots through this module, so it cannot import them back.


class _Percentiles(Protocol):
    @property
    def p50(self) -> float: ...
    @property
    def p99(self) -> float: ...


class _ScenarioRun(Protocol):
    @property
    def scenario(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def throughput_rps(self) -> float: ...
    @property
    def latency(self) -> _Percentiles: ...
    @property
    def latencies_ms(self) -> list[float]: ...


class _LatencyTarget(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def spec(self) -> str: ...
    @property
    def info(self) -> Mapping[str, Any]: ...
    @property
    def results(self) -> Sequence[_ScenarioRun]: ...


class LatencyReport(Protocol):
    """What the plots read of ``deepclf.bench.latency.LatencyReport``."""

    @property
    def targets(self) -> Sequence[_LatencyTarget]: ...


class _ParityTarget(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def spec(self) -> str: ...
    @property
    def accuracy(self) -> float | None: ...
    @property
    def confusion(self) -> list[list[int]] | None: ...


class ParityReport(Protocol):
    """What the plots read of ``deepclf.bench.parity.ParityReport``."""

    @property
    def targets(self) -> Sequence[_ParityTarget]: ...
    @property
    def images(self) -> Mapping[str, Any]: ...


def require_matplotlib() -> None:
    """Fail now, with the extra to install, when plots are asked for and matplotlib is missing."""
    _plt()


def _plt():  # -> matplotlib.pyplot
    try:
        import matplotlib  # optional, heavy: only when plotting
    except ImportError as exc:
        from deepclf.errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "bench", "drawing benchmark plots") from exc

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    with atomic_output_file(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path


def latency_distribution(report: LatencyReport, path: str | os.PathLike[str]) -> Path | None:
    """Box plots of each target's latency samples (single-stream preferred). None when there is nothing to plot."""
    series: list[tuple[str, list[float]]] = []
    for t in report.targets:
        runs = [r for r in t.results if r.latencies_ms]
        pick = next((r for r in runs if r.scenario == "single-stream"), runs[0] if runs else None)
        if pick is not None:
            series.append((f"{t.name}\n({pick.scenario})", pick.latencies_ms))
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(series) + 2), 4.5))
    ax.boxplot([s for _, s in series], whis=(1, 99), showfliers=False)
    ax.set_xticks(range(1, len(series) + 1), [n for n, _ in series], rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("latency per request (ms, log)")
    ax.set_title("Latency distribution (box p25-p75, whiskers p1-p99, line p50)")
    ax.grid(True, axis="y", alpha=0.3, which="both")
    return _save(fig, Path(path))


def concurrency_curves(report: LatencyReport, path: str | os.PathLike[str]) -> Path | None:
    """Throughput and p99 latency against concurrency (closed loop), one line per target."""
    lines = []
    for t in report.targets:
        pts = sorted(
            (r.concurrency, r.throughput_rps, r.latency.p99)
            for r in t.results
            if r.scenario == "concurrency" and r.count
        )
        if pts:
            lines.append((t.name, pts))
    if not lines:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, pts in lines:
        c = [p[0] for p in pts]
        ax1.plot(c, [p[1] for p in pts], marker="o", label=name)
        ax2.plot(c, [p[2] for p in pts], marker="o", label=name)
    levels = sorted({p[0] for _, pts in lines for p in pts})
    for ax, ylabel in ((ax1, "throughput (requests/s)"), (ax2, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrency (clients in a closed loop)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    ax2.set_yscale("log")
    ax1.legend(fontsize=7)
    fig.suptitle("Throughput and p99 against concurrency")
    return _save(fig, Path(path))


def size_latency_accuracy(points: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path | None:
    """Scatter of model size (MiB) against p50 latency (ms), labelled with top-1 accuracy.

    ``points``: dicts with ``name``, ``model_bytes``, ``p50_ms`` and optionally ``accuracy``.
    """
    pts = [p for p in points if p.get("model_bytes") and p.get("p50_ms") is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in pts:
        mib = p["model_bytes"] / 2**20
        acc = p.get("accuracy")
        ax.scatter([mib], [p["p50_ms"]], s=50)
        label = p["name"] + (f"\ntop-1 {acc:.3f}" if acc is not None else "")
        ax.annotate(label, (mib, p["p50_ms"]), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xlabel("model size on disk (MiB)")
    ax.set_ylabel("single-stream p50 latency (ms)")
    ax.set_title("Size vs latency vs accuracy of the model variants")
    ax.grid(True, alpha=0.3)
    return _save(fig, Path(path))


def merge_points(latency: LatencyReport, parity: ParityReport | None) -> list[dict[str, Any]]:
    """Join a latency report's single-stream p50 with a parity report's accuracy, by target spec or name."""
    acc: dict[str, float] = {}
    if parity is not None:
        for p in parity.targets:
            if p.accuracy is not None:
                acc[p.spec] = acc[p.name] = p.accuracy
    out = []
    for t in latency.targets:
        ss = next((r for r in t.results if r.scenario == "single-stream" and r.count), None)
        if ss is None or t.info.get("transport") not in ("in-process", "in-process (raw interpreter)"):
            continue
        out.append(
            {
                "name": t.name,
                "model_bytes": t.info.get("model_bytes"),
                "p50_ms": ss.latency.p50,
                "accuracy": acc.get(t.spec, acc.get(t.name)),
            }
        )
    return out


def latency_plots(
    report: LatencyReport,
    out_dir: str | os.PathLike[str],
    *,
    prefix: str = "latency",
    parity: ParityReport | None = None,
    size_plot: bool = True,
) -> list[Path]:
    """Every plot a latency report supports: distribution, concurrency curves and (``size_plot``) the
    size/latency plot, labelled with accuracy when ``parity`` is given."""
    out = Path(out_dir)
    made = [
        latency_distribution(report, out / f"{prefix}_distribution.png"),
        concurrency_curves(report, out / f"{prefix}_concurrency.png"),
    ]
    if size_plot:
        made.append(size_latency_accuracy(merge_points(report, parity), out / "size_latency_accuracy.png"))
    return [p for p in made if p is not None]


def parity_plots(report: ParityReport, out_dir: str | os.PathLike[str], *, prefix: str = "parity") -> list[Path]:
    """Confusion matrices of every target that ran, side by side."""
    done = [t for t in report.targets if t.confusion is not None]
    if not done:
        return []
    plt = _plt()
    n = len(done)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    names = report.images.get("class_names", [])
    for ax, t in zip(axes.flat, done, strict=False):  # the grid may have spare axes (switched off below)
        assert t.confusion is not None  # done holds only the targets that have one
        ax.imshow(t.confusion, cmap="Blues")
        for i, row in enumerate(t.confusion):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        ax.set_title(f"{t.name}\ntop-1 {t.accuracy:.3f}", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supxlabel("predicted", fontsize=8)
    fig.supylabel("true", fontsize=8)
    return [_save(fig, Path(out_dir) / f"{prefix}_confusion.png")]
