"""Every LiteRT variant's answers for a list of photos, through deepclf's own pipeline (decode and resize with
``deepclf.preprocessing``, run with ``load_runner``), saved as ``.npz``. The same file runs on x86 and inside the
arm64 root (any venv with ``[edge]``), so the two answers differ only by the machine::

    python parity_probe.py VERSION_DIR PHOTO_ROOT LIST_FILE OUT.npz [--threads 2]

``OUT.npz``: ``input`` (the preprocessed float32 batch), per variant ``<variant>`` (probabilities, float32, one
row per photo), ``xnnpack`` (whether LiteRT said it applied its XNNPACK delegate) and ``machine``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

VARIANTS = ("fp32", "fp16", "dynamic", "int8")


@contextlib.contextmanager
def native_stderr() -> Iterator[io.StringIO]:
    """What native code (LiteRT's INFO lines) writes to file descriptor 2 inside the block."""
    sink = io.StringIO()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.write(tmp.read())
    sys.stderr.write(sink.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("photo_root", type=Path)
    parser.add_argument("list_file", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from deepclf.preprocessing import preprocess_batch
    from deepclf.runtime import load_runner

    files = [args.photo_root / rel for rel in args.list_file.read_text().split("\n") if rel]
    result: dict[str, np.ndarray] = {"machine": np.array(platform.machine())}
    with native_stderr() as err:  # LiteRT says once per process whether it applied XNNPACK
        for variant in VARIANTS:
            with load_runner(args.version_dir, variant=variant, num_threads=args.threads) as r:
                if "input" not in result:
                    result["input"] = preprocess_batch(files, r.manifest.input)
                result[variant] = r.run({"image": result["input"]})["probabilities"]
    result["xnnpack"] = np.array("XNNPACK delegate" in err.getvalue())
    np.savez(args.out, **result)  # type: ignore[arg-type]  # mypy matches a **dict against savez's allow_pickle: bool too
    return 0


if __name__ == "__main__":
    sys.exit(main())
