"""Turning results into a terminal table, JSON and CSV (all files written atomically).

``format_table(rows, columns)`` lays out a list of dicts as an aligned text table; ``write_csv`` writes the same
rows as CSV through ``deepclf.fsutil`` so a reader never sees half a file::

    print(format_table(rows, [("target", "target"), ("p50 ms", "p50")]))
    write_csv(out / "latency.csv", rows)
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deepclf.fsutil import atomic_write_json, atomic_write_text


def fmt(value: Any, digits: int = 2) -> str:
    """A compact cell: floats to ``digits`` decimals (large ones without), ``nan``/None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], *, digits: int = 2) -> str:
    """An aligned plain-text table; ``columns`` are ``(header, key)`` pairs. Numbers align right."""
    cells = [[fmt(r.get(key), digits) for _, key in columns] for r in rows]
    headers = [h for h, _ in columns]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    numeric = [all(_is_num(r.get(key)) for r in rows) and rows for _, key in columns]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out)


def _is_num(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def to_csv(rows: Iterable[Mapping[str, Any]], fields: Sequence[str] | None = None) -> str:
    """CSV text of ``rows`` (the union of their keys, in first-seen order, unless ``fields`` is given)."""
    rows = list(rows)
    if fields is None:
        seen: dict[str, None] = {}
        for r in rows:
            for k in r:
                seen.setdefault(k, None)
        fields = list(seen)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()


def write_csv(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], fields: Sequence[str] | None = None
) -> Path:
    """Write ``rows`` as CSV atomically."""
    return atomic_write_text(path, to_csv(rows, fields))


def write_report(
    out_dir: str | os.PathLike[str], prefix: str, doc: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]
) -> list[Path]:
    """Write a report as ``<prefix>.json`` (``doc``) and ``<prefix>.csv`` (``rows``) into ``out_dir``, atomically."""
    out = Path(out_dir)
    return [atomic_write_json(out / f"{prefix}.json", doc), write_csv(out / f"{prefix}.csv", rows)]


def human_bytes(n: int | None) -> str:
    """``4_012_345`` -> ``'3.8 MiB'``."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
