"""``deepclf data check``: what is wrong with a folder of class sub-folders, before training trips over it.

Reports per-class counts, unreadable images (corrupt, truncated, not really an image), files that are not images,
exact duplicate files (the flowers set has three pairs, one of them across roses and tulips) and tiny images::

    report = check_folder("flower_photos")
    print(report.format_text())
    report.unreadable            # [(path, reason), ...] -> training refuses the folder when non-empty
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from deepclf.data.split import IMAGE_EXTENSIONS, class_names_of
from deepclf.errors import DatasetError

#: Images whose shorter side is below this many pixels are reported as tiny (the models take 180x180).
TINY_SIDE = 32


@dataclass
class CheckReport:
    """The result of ``check_folder``. ``ok`` is false when any image is unreadable."""

    root: Path
    counts: dict[str, int] = field(default_factory=dict)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    non_images: list[Path] = field(default_factory=list)
    duplicates: list[list[Path]] = field(default_factory=list)
    tiny: list[tuple[Path, tuple[int, int]]] = field(default_factory=list)
    stray_files: list[Path] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return not self.unreadable

    def cross_class_duplicates(self) -> list[list[Path]]:
        """Duplicate groups whose files sit in different class folders (the same photo under two labels)."""
        return [g for g in self.duplicates if len({p.relative_to(self.root).parts[0] for p in g}) > 1]

    def _rel(self, p: Path) -> str:
        return str(p.relative_to(self.root))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "total": self.total,
            "counts": self.counts,
            "unreadable": [{"file": self._rel(p), "reason": r} for p, r in self.unreadable],
            "non_images": [self._rel(p) for p in self.non_images],
            "duplicates": [[self._rel(p) for p in g] for g in self.duplicates],
            "cross_class_duplicates": [[self._rel(p) for p in g] for g in self.cross_class_duplicates()],
            "tiny": [{"file": self._rel(p), "size": list(s)} for p, s in self.tiny],
            "stray_files": [self._rel(p) for p in self.stray_files],
            "ok": self.ok,
        }

    def format_text(self) -> str:
        lines = [f"{self.root}: {self.total} images in {len(self.counts)} classes"]
        width = max((len(c) for c in self.counts), default=5)
        for c, n in self.counts.items():
            lines.append(f"  {c:<{width}}  {n:>6}")

        def section(title: str, items: list[str]) -> None:
            lines.append(f"{title}: {len(items) if items else 'none'}")
            lines.extend(f"  {s}" for s in items)

        section("unreadable images", [f"{self._rel(p)}: {r}" for p, r in self.unreadable])
        section("non-image files", [self._rel(p) for p in self.non_images])
        cross = {tuple(g) for g in self.cross_class_duplicates()}
        section(
            "exact duplicate groups",
            [
                " == ".join(self._rel(p) for p in g) + ("   (across classes!)" if tuple(g) in cross else "")
                for g in self.duplicates
            ],
        )
        section(f"tiny images (shorter side < {TINY_SIDE} px)", [f"{self._rel(p)}: {w}x{h}" for p, (w, h) in self.tiny])
        if self.stray_files:
            section("files outside class folders (ignored)", [self._rel(p) for p in self.stray_files])
        lines.append("OK" if self.ok else "NOT OK: fix or remove the unreadable images before training")
        return "\n".join(lines)


def _inspect(path: Path) -> tuple[str, str | None, tuple[int, int] | None]:
    """(sha256, error or None, (w, h) or None) for one file; decodes the image fully to catch truncation."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return digest, "empty file (0 bytes)", None
    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size
            if img.format == "JPEG":
                img.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))  # fast, still reads every byte
            img.load()
        return digest, None, size
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding, not a crash
        return digest, f"{type(exc).__name__}: {exc}", None


def check_folder(root: str | os.PathLike[str], *, workers: int | None = None) -> CheckReport:
    """Scan every file under the class sub-folders of ``root``; see ``CheckReport``."""
    root = Path(root)
    classes = class_names_of(root)
    if not classes:
        raise DatasetError(f"{root} has no class sub-folders; expected e.g. {root}/daisy/*.jpg")
    report = CheckReport(root=root)
    report.stray_files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    files: list[tuple[str, Path]] = []
    for cls in classes:
        report.counts[cls] = 0
        for dirpath, _, names in sorted(os.walk(root / cls), key=lambda x: x[0]):
            for n in sorted(names):
                if not n.startswith("."):
                    files.append((cls, Path(dirpath) / n))
    by_hash: dict[str, list[Path]] = defaultdict(list)
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        results = list(pool.map(lambda cf: _inspect(cf[1]), files))
    for (cls, path), (digest, err, size) in zip(files, results, strict=True):
        by_hash[digest].append(path)
        is_image_name = path.name.lower().endswith(IMAGE_EXTENSIONS)
        if not is_image_name:
            report.non_images.append(path)
            continue
        report.counts[cls] += 1
        if err is not None:
            report.unreadable.append((path, err))
        elif size is not None and min(size) < TINY_SIDE:
            report.tiny.append((path, size))
    report.duplicates = sorted((sorted(g) for g in by_hash.values() if len(g) > 1), key=lambda g: str(g[0]))
    return report
