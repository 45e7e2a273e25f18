"""Atomic writes: nothing that existed is lost and no reader ever sees half a file or half a folder.

Files are written to a temporary sibling and ``os.replace``-d into place; folders are built in a temporary sibling
and renamed in one step (``publish_dir``), which is what a server polling a models folder needs::

    atomic_write_json(run_dir / "history.json", history)
    with publish_dir(models / "flowers" / "3") as tmp:   # tmp is an empty sibling folder
        export_everything_into(tmp)                       # renamed to .../3 only if this block succeeds
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepclf.errors import UsageError


def _umask() -> int:
    """The process's umask. ``tempfile`` makes files 0600 and folders 0700 whatever it is; what is published here
    gets the modes a plain ``open()``/``mkdir()`` would give instead (0644/0755 under the usual 022), so that a
    model folder copied to a device stays readable by the service user that serves it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it, briefly, to the usual value
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place (mode as
    a plain write would create it: 0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` atomically (see ``atomic_write_bytes``)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as pretty, key-sorted JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths: the things our results contain.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


@contextlib.contextmanager
def atomic_output_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds, delete it otherwise.

    For libraries that insist on writing to a path themselves (matplotlib's ``savefig``, Keras' ``save``)::

        with atomic_output_file(run / "curves.png") as tmp:
            fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


@contextlib.contextmanager
def publish_dir(final: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a hidden temporary sibling and rename it to ``final`` in one step when the block succeeds.

    A failure inside the block removes the temporary folder and leaves ``final`` as it was (absent). An existing
    ``final`` is refused unless ``overwrite`` is true, in which case it is replaced only after the new one is
    complete. The temporary name starts with a dot so that TF Serving's version scan (numeric names) ignores it.
    The folder gets the mode ``mkdir`` would give it (0777 less the umask), not ``mkdtemp``'s 0700.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise UsageError(f"{final} already exists; refusing to overwrite it (pass --force to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.rmdir(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_bytes_or_path(value: bytes | str | os.PathLike[str], what: str) -> bytes:
    """``value`` itself when it is bytes, else the contents of the file it names (certificates, keys, configs).

    A file that cannot be read is a ``UsageError`` naming ``what``: ``cannot read the --ssl_cert from /x: ...``.
    """
    if isinstance(value, bytes):
        return value
    p = Path(value)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} from {p}: {exc.strerror or exc}") from None
