"""Compile ``protocol/protos/**/*.proto`` into the committed descriptor set ``protocol/tfserving.binpb``.

Development-time only (needs ``grpcio-tools``, a ``dev`` extra); at run time ``deepclf.protocol.messages`` loads
the committed ``.binpb`` into a private descriptor pool, so nothing is generated or compiled on a device::

    make protos                                       # = python -m deepclf.protocol.build_protos
    python -m deepclf.protocol.build_protos --check   # exit 1 if the committed file is stale

The set includes its imports (``google/protobuf/any.proto``, ``wrappers.proto``) so that it is self-contained.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from deepclf.errors import DeepclfError, MissingDependencyError
from deepclf.fsutil import atomic_write_bytes

PROTO_ROOT = Path(__file__).resolve().parent / "protos"
DESCRIPTOR_SET = Path(__file__).resolve().parent / "tfserving.binpb"


def proto_files(root: Path = PROTO_ROOT) -> list[str]:
    """The ``.proto`` files under ``root``, as import paths (``tensorflow_serving/apis/predict.proto``), sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.proto"))


def compile_descriptor_set(root: Path = PROTO_ROOT) -> bytes:
    """Run protoc (from grpcio-tools) on every proto under ``root``; return the serialized FileDescriptorSet.

    >>> data = compile_descriptor_set()   # doctest: +SKIP
    """
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("grpcio-tools", "dev", "compiling the TF Serving protos")
    # protoc needs the well-known types (any.proto, wrappers.proto); grpcio-tools ships them.
    wkt_root = Path(spec.origin).resolve().parent / "_proto"
    files = proto_files(root)
    if not files:
        raise DeepclfError(f"no .proto files found under {root}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        # A child process: grpc_tools' bundled protobuf crashes a process that has loaded TensorFlow's.
        args = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{wkt_root}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *files,
        ]
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DeepclfError(
                f"protoc failed (exit status {proc.returncode}) compiling {len(files)} files under {root}: "
                f"{proc.stderr.strip()}"
            )
        return out.read_bytes()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m deepclf.protocol.build_protos [--check]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed file; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=DESCRIPTOR_SET, help=f"output file (default: {DESCRIPTOR_SET})")
    args = parser.parse_args(argv)
    data = compile_descriptor_set()
    if args.check:
        current = args.out.read_bytes() if args.out.is_file() else b""
        if current != data:
            print(f"{args.out} is stale; run `make protos` and commit it", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(data)} bytes)")
        return 0
    atomic_write_bytes(args.out, data)
    print(f"wrote {args.out} ({len(data)} bytes, {len(proto_files())} protos)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
