"""Compile ``protocol/protos/**/*.proto`` into the committed descriptor set ``protocol/tfserving.binpb``.

Development-time only (needs ``grpcio-tools``, a ``dev`` extra); at run time ``deepclf.protocol.messages`` loads
the committed ``.binpb`` into a private descriptor pool, so nothing is generated or compiled on a device::

    make protos                                       # = python -m deepclf.protocol.build_protos
    python -m deepclf.protocol.build_protos --check   # exit 1 if the committed files are stale

The set includes its imports (``google/protobuf/any.proto``, ``wrappers.proto``) so that it is self-contained.

Beside it goes ``protocol/_tfserving.pyi``, the static types of those message classes (fields, constructors,
enums) for type checkers: the classes are made at run time from the descriptor set, so without it mypy would see
a bare ``Message``. It is generated from the same set (``render_stub``) and is stale when the set is.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import subprocess
import sys
import tempfile
from pathlib import Path

from deepclf.errors import DeepclfError, MissingDependencyError
from deepclf.fsutil import atomic_write_bytes, atomic_write_text

PROTO_ROOT = Path(__file__).resolve().parent / "protos"
DESCRIPTOR_SET = Path(__file__).resolve().parent / "tfserving.binpb"
STUB = Path(__file__).resolve().parent / "_tfserving.pyi"


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


# -- the type stub ---------------------------------------------------------------------------------------------

# FieldDescriptorProto.Type -> the Python type of one value (enums are ints, messages are named separately).
_SCALARS = {
    1: "builtins.float",  # double
    2: "builtins.float",  # float
    3: "builtins.int",  # int64
    4: "builtins.int",  # uint64
    5: "builtins.int",  # int32
    6: "builtins.int",  # fixed64
    7: "builtins.int",  # fixed32
    8: "builtins.bool",  # bool
    9: "builtins.str",  # string
    12: "builtins.bytes",  # bytes
    13: "builtins.int",  # uint32
    14: "builtins.int",  # enum
    15: "builtins.int",  # sfixed32
    16: "builtins.int",  # sfixed64
    17: "builtins.int",  # sint32
    18: "builtins.int",  # sint64
}
_MESSAGE = 11
_REPEATED = 3

_STUB_HEADER = """\
# Generated from {source} by `make protos` (deepclf.protocol.build_protos.render_stub): do not edit.
# Type checking only: the classes are made at run time from the descriptor set, in a private pool; this file
# gives type checkers their fields. No module of this name exists at run time.

import builtins
import typing
from collections.abc import Iterable, Mapping

from google.protobuf.descriptor import Descriptor
from google.protobuf.internal.containers import (
    MessageMap,
    RepeatedCompositeFieldContainer,
    RepeatedScalarFieldContainer,
    ScalarMap,
)
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message
"""


def render_stub(data: bytes, *, source: str) -> str:
    """The ``.pyi`` text typing every message and enum of the serialized ``FileDescriptorSet`` ``data``.

    One class per message (nested messages nested), named as in the ``.proto`` (the sets have no clashing short
    names; a clash raises). Scalars are ``int``/``float``/``bool``/``str``/``bytes``, enum fields ``int``,
    repeated fields and maps protobuf's containers; ``HasField``, ``ClearField`` and ``WhichOneof`` take the
    literal names they accept. An enum ``E`` is an ``EnumTypeWrapper`` value of class ``_E`` with one ``int``
    attribute per value (nested enums also put their values on the message class, as protobuf does).
    """
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    # full name (".pkg.Msg.Nested") -> the stub's name for it ("Msg.Nested"), and map entries -> (key, value)
    names: dict[str, str] = {}
    maps: dict[str, tuple[descriptor_pb2.FieldDescriptorProto, descriptor_pb2.FieldDescriptorProto]] = {}

    def index(prefix: str, local: str, msg: descriptor_pb2.DescriptorProto) -> None:
        full = f"{prefix}.{msg.name}"
        if msg.options.map_entry:
            maps[full] = (msg.field[0], msg.field[1])
            return
        names[full] = f"{local}{msg.name}"
        for nested in msg.nested_type:
            index(full, f"{local}{msg.name}.", nested)
        for enum in msg.enum_type:
            names[f"{full}.{enum.name}"] = f"{local}{msg.name}.{enum.name}"

    for fd in fds.file:
        pkg = f".{fd.package}" if fd.package else ""
        for msg in fd.message_type:
            index(pkg, "", msg)
        for enum in fd.enum_type:
            names[f"{pkg}.{enum.name}"] = enum.name
    top = [n for n in names.values() if "." not in n]
    clashes = sorted({n for n in top if top.count(n) > 1})
    if clashes:
        raise DeepclfError(f"message or enum names defined twice in {source}: {', '.join(clashes)}")

    def value_type(field: descriptor_pb2.FieldDescriptorProto) -> str:
        return names[field.type_name] if field.type == _MESSAGE else _SCALARS[field.type]

    out = [_STUB_HEADER.format(source=source)]

    def enum_lines(enum: descriptor_pb2.EnumDescriptorProto, indent: str, owner: str) -> list[str]:
        wrapper = f"_{enum.name}"
        lines = ["", f"{indent}@typing.final", f"{indent}class {wrapper}(EnumTypeWrapper):"]
        lines += [f"{indent}    {v.name}: builtins.int" for v in enum.value]
        if owner:  # a nested enum: the wrapper on the message, and its values as class attributes
            lines.append(f"{indent}{enum.name}: typing.ClassVar[{owner}.{wrapper}]")
            lines += [f"{indent}{v.name}: typing.ClassVar[builtins.int]" for v in enum.value]
        else:
            lines.append(f"{enum.name}: {wrapper}")
        return lines

    def message_lines(msg: descriptor_pb2.DescriptorProto, full: str, indent: str) -> list[str]:
        if msg.options.map_entry:
            return []
        me = names[full]
        lines = ["", f"{indent}@typing.final", f"{indent}class {msg.name}(Message):"]
        body = indent + "    "
        lines.append(f"{body}DESCRIPTOR: Descriptor")
        for nested in msg.nested_type:
            lines += [body + line if line else line for line in message_lines(nested, f"{full}.{nested.name}", "")]
        for enum in msg.enum_type:
            lines += [body + line if line else line for line in enum_lines(enum, "", me)]
        init: list[str] = []
        has: list[str] = []
        fields = [f for f in msg.field if not keyword.iskeyword(f.name)]
        for field in fields:
            if field.type == _MESSAGE and field.type_name in maps:
                key, value = maps[field.type_name]
                kind = "MessageMap" if value.type == _MESSAGE else "ScalarMap"
                kt, vt = value_type(key), value_type(value)
                lines += [f"{body}@property", f"{body}def {field.name}(self) -> {kind}[{kt}, {vt}]: ..."]
                init.append(f"{field.name}: Mapping[{kt}, {vt}] | None = ...")
            elif field.label == _REPEATED:
                vt = value_type(field)
                kind = "RepeatedCompositeFieldContainer" if field.type == _MESSAGE else "RepeatedScalarFieldContainer"
                lines += [f"{body}@property", f"{body}def {field.name}(self) -> {kind}[{vt}]: ..."]
                init.append(f"{field.name}: Iterable[{vt}] | None = ...")
            elif field.type == _MESSAGE:
                vt = value_type(field)
                lines += [f"{body}@property", f"{body}def {field.name}(self) -> {vt}: ..."]
                init.append(f"{field.name}: {vt} | None = ...")
                has.append(field.name)
            else:
                vt = value_type(field)
                lines.append(f"{body}{field.name}: {vt}")
                init.append(f"{field.name}: {vt} | None = ...")
                if field.HasField("oneof_index"):
                    has.append(field.name)
        oneofs: dict[str, list[str]] = {}
        for field in fields:
            if field.HasField("oneof_index") and not field.proto3_optional:
                oneofs.setdefault(msg.oneof_decl[field.oneof_index].name, []).append(field.name)
        has += list(oneofs)
        params = ", ".join(["self", "*", *init]) if init else "self"
        lines.append(f"{body}def __init__({params}) -> None: ...")
        if has:
            lines.append(f"{body}def HasField(self, field_name: {_literal(has)}) -> builtins.bool: ...")
        clearable = [f.name for f in fields] + list(oneofs)
        if clearable:
            lines.append(f"{body}def ClearField(self, field_name: {_literal(clearable)}) -> None: ...")
        overload = len(oneofs) > 1
        for group, members in oneofs.items():
            if overload:
                lines.append(f"{body}@typing.overload")
            lines.append(
                f"{body}def WhichOneof(self, oneof_group: {_literal([group])}) -> {_literal(members)} | None: ..."
            )
        return lines

    for fd in fds.file:
        pkg = f".{fd.package}" if fd.package else ""
        for enum in fd.enum_type:
            out += enum_lines(enum, "", "")
        for msg in fd.message_type:
            out += message_lines(msg, f"{pkg}.{msg.name}", "")
    return "\n".join(out) + "\n"


def _literal(values: list[str]) -> str:
    return "typing.Literal[" + ", ".join(f'"{v}"' for v in values) + "]"


def stub_path(descriptor_set: Path) -> Path:
    """Where the stub of a descriptor set goes: beside it, ``_<stem>.pyi``."""
    return descriptor_set.with_name(f"_{descriptor_set.stem}.pyi")


def stub_for(descriptor_set: Path, data: bytes) -> str:
    """The stub text of a package's descriptor set (``data``: its bytes), naming it ``<package>/<file>``."""
    return render_stub(data, source=f"{descriptor_set.parent.name}/{descriptor_set.name}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m deepclf.protocol.build_protos [--check]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed files; exit 1 if stale")
    parser.add_argument(
        "--out",
        type=Path,
        default=DESCRIPTOR_SET,
        help=f"output file (default: {DESCRIPTOR_SET}); the type stub goes beside it as _<stem>.pyi",
    )
    args = parser.parse_args(argv)
    data = compile_descriptor_set()
    stub_out = stub_path(args.out)
    stub = stub_for(DESCRIPTOR_SET, data)
    if args.check:
        current = args.out.read_bytes() if args.out.is_file() else b""
        current_stub = stub_out.read_text(encoding="utf-8") if stub_out.is_file() else ""
        stale = [str(p) for p, ok in ((args.out, current == data), (stub_out, current_stub == stub)) if not ok]
        if stale:
            print(f"{' and '.join(stale)} stale; run `make protos` and commit", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(data)} bytes), and so is {stub_out.name}")
        return 0
    atomic_write_bytes(args.out, data)
    atomic_write_text(stub_out, stub)
    print(f"wrote {args.out} ({len(data)} bytes, {len(proto_files())} protos) and {stub_out.name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
