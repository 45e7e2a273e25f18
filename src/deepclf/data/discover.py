"""Find the flowers dataset: ``--data PATH`` / ``DEEPCLF_DATA``, then the Keras cache, then download and verify.

The official archive is checksum-verified (SHA-256) before it is extracted, and extracted into a temporary folder
that is renamed into the cache only when complete, so an interrupted download never leaves a half dataset behind::

    root = resolve_dataset(args.data)          # raises DatasetError saying how to point at a copy
    root = resolve_dataset(None, download=False)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from deepclf.errors import DatasetError

FLOWERS_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
FLOWERS_SHA256 = "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"
ENV_VAR = "DEEPCLF_DATA"

HOW_TO_POINT = (
    "point deepclf at a copy of the flowers photos with --data PATH or the DEEPCLF_DATA environment variable "
    "(a folder with one sub-folder per class, e.g. flower_photos/daisy/*.jpg)"
)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def cached_copies() -> list[Path]:
    """Candidate folders where ``keras.utils.get_file(..., untar/extract=True)`` leaves flower_photos."""
    base = keras_cache_dir()
    return [
        base / "flower_photos",
        base / "flower_photos_extracted" / "flower_photos",
        base / "flower_photos_extracted",
    ]


def _looks_like_dataset(p: Path) -> bool:
    return p.is_dir() and any(c.is_dir() and not c.name.startswith(".") for c in p.iterdir())


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_flowers(
    dest_root: Path | None = None, *, url: str | None = None, sha256: str | None = None, timeout: float = 30.0
) -> Path:
    """Download the official archive, verify its SHA-256, extract it atomically; return the flower_photos folder.

    ``url`` and ``sha256`` default to ``FLOWERS_URL`` / ``FLOWERS_SHA256`` as they are at call time.
    """
    url = url or FLOWERS_URL
    sha256 = sha256 or FLOWERS_SHA256
    dest_root = dest_root or keras_cache_dir()
    final = dest_root / "flower_photos"
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".flower_photos-", dir=dest_root) as tmp:
        archive = Path(tmp) / "flower_photos.tgz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(archive, "wb") as out:  # noqa: S310 - FLOWERS_URL or the caller's own URL
                shutil.copyfileobj(resp, out)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DatasetError(f"could not download {url}: {getattr(exc, 'reason', exc)}") from exc
        digest = sha256_file(archive)
        if digest != sha256:
            raise DatasetError(f"downloaded archive from {url} has SHA-256 {digest}, expected {sha256}; not using it")
        extract_to = Path(tmp) / "x"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(extract_to, filter="data")
        src = extract_to / "flower_photos"
        if not src.is_dir():
            raise DatasetError(f"archive from {url} has no flower_photos/ folder")
        os.replace(src, final)
    return final


def resolve_dataset(data: str | os.PathLike[str] | None, *, download: bool = True) -> Path:
    """The dataset folder to use, in order: ``data``, ``$DEEPCLF_DATA``, the Keras cache, a verified download.

    Raises ``DatasetError`` (with how to point at a copy) when none works.
    """
    explicit = data if data not in (None, "") else os.environ.get(ENV_VAR) or None
    if explicit is not None:
        p = Path(explicit).expanduser()
        source = "--data" if data not in (None, "") else ENV_VAR
        if not p.exists():
            raise DatasetError(f"{source} points at {p}, which does not exist; {HOW_TO_POINT}")
        if not _looks_like_dataset(p):
            raise DatasetError(f"{source} points at {p}, which has no class sub-folders; {HOW_TO_POINT}")
        return p
    for c in cached_copies():
        if _looks_like_dataset(c) and (c / "daisy").is_dir():
            return c
    if not download:
        raise DatasetError(f"no flowers dataset found in the Keras cache ({keras_cache_dir()}); {HOW_TO_POINT}")
    try:
        return download_flowers()
    except DatasetError as exc:
        raise DatasetError(f"no flowers dataset found and the download failed ({exc}); {HOW_TO_POINT}") from exc
