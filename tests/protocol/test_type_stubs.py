"""The generated type stubs of the descriptor sets (``protocol/_tfserving.pyi``, ``serving/_model_server_config.pyi``)
are fresh, and name the classes ``deepclf.protocol.messages`` makes at run time. TF-free, no protoc needed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from deepclf.protocol import build_protos, messages
from deepclf.serving import modelconfig

DESCRIPTOR_SETS = [build_protos.DESCRIPTOR_SET, Path(modelconfig.__file__).parent / modelconfig.DESCRIPTOR_SET_NAME]


@pytest.mark.parametrize("descriptor_set", DESCRIPTOR_SETS, ids=lambda p: p.name)
def test_type_stub_matches_its_descriptor_set(descriptor_set: Path) -> None:
    stub = build_protos.stub_path(descriptor_set)
    expected = build_protos.stub_for(descriptor_set, descriptor_set.read_bytes())
    assert stub.read_text(encoding="utf-8") == expected, (
        f"{stub} is stale: run `make protos` (protocol) or `python -m deepclf.serving.modelconfig --build` (serving)"
    )


def test_stub_types_every_runtime_message_and_enum_by_its_own_name() -> None:
    tree = ast.parse(build_protos.STUB.read_text(encoding="utf-8"))
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    enums = {
        node.target.id for node in tree.body if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    exported = {name: value for name, value in vars(messages).items() if not name.startswith("_")}
    message_classes = {
        n: v for n, v in exported.items() if isinstance(v, type) and issubclass(v, Message) and v is not Message
    }
    assert len(message_classes) > 20
    for name, cls in message_classes.items():
        assert cls.DESCRIPTOR.name == name and name in classes, name
    for name in ("DataType", "Code"):
        assert isinstance(exported[name], EnumTypeWrapper) and name in enums
