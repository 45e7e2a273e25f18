"""The code's layout rules, kept true: which packages may import which, and each package's public names.

The layers, bottom to top (docs/architecture.md, "The layers"); a module may import its own package and the
packages this table allows, nothing above:

    core      errors, fsutil, variants, versions, manifest, preprocessing(_tf), signatures   numpy/Pillow only
    wire      protocol                                     core
    models    runtime                                      core
    data      data                                         core
    edge      serving (core, protocol, runtime); clients (core, protocol; runtime only for LocalClient)
    TF side   train (core, data); convert (core, data, runtime, protocol)
    deploy    deploy                                       core: it writes files about models, never runs them
    measure   bench                                        everything below
    top       cli, demo, predict                           anything

Every import statement is read from the source (``ast``), including imports inside functions, so a lazy import
cannot hide a dependency that breaks the rule; and no two modules may import each other, directly or round a
longer loop (``test_no_import_cycles``), lazily or not.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepclf"

CORE = {
    "deepclf",
    "errors",
    "fsutil",
    "variants",
    "versions",
    "manifest",
    "preprocessing",
    "preprocessing_tf",
    "signatures",
}
# What each unit may import besides itself. The core's own order is stated too, so no cycle can form inside it.
ALLOWED: dict[str, set[str]] = {
    "deepclf": set(),  # the package __init__: __version__ only
    "errors": set(),
    "fsutil": {"errors"},
    "variants": {"errors"},
    "versions": {"errors"},
    "manifest": {"deepclf", "errors", "fsutil", "variants"},
    "preprocessing": {"errors", "manifest"},
    "preprocessing_tf": {"errors", "manifest", "preprocessing"},
    "signatures": {"errors", "manifest", "preprocessing"},
    "protocol": CORE,
    "runtime": CORE,
    "data": CORE,
    "serving": CORE | {"protocol", "runtime"},
    "clients": CORE | {"protocol"},
    "train": CORE | {"data"},
    "convert": CORE | {"data", "runtime", "protocol"},
    "deploy": CORE,
    "bench": CORE | {"data", "protocol", "runtime", "clients", "serving"},
    "cli": {"*"},
    "demo": {"*"},
    "predict": {"*"},
}
# Deliberate exceptions, each with its reason.
EXCEPTIONS = {
    ("clients/_local.py", "runtime"): "LocalClient runs the model in process: it is the clients' API over a runner",
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "deepclf"


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "<relative>"))
    return [(line, name) for line, name in found if name == "<relative>" or name.split(".")[0] == "deepclf"]


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_has_a_layer() -> None:
    units = {p.stem if p.parent == SRC else p.relative_to(SRC).parts[0] for p in _sources()}
    units = {"deepclf" if u == "__init__" else u for u in units}
    missing = sorted(units - set(ALLOWED))
    assert not missing, f"new top-level modules/packages {missing}: give each a layer in ALLOWED and the docs"


def test_imports_follow_the_layers() -> None:
    broken = []
    for path in _sources():
        rel = path.relative_to(SRC)
        me = (
            "deepclf"
            if rel.name == "__init__.py" and rel.parent == Path(".")
            else (rel.parts[0] if len(rel.parts) > 1 else rel.stem)
        )
        allowed = ALLOWED[me]
        for line, name in _imports(path):
            if name == "<relative>":
                broken.append(f"{rel}:{line}: relative import (the project uses absolute imports)")
                continue
            other = _unit(name)
            if other == me or "*" in allowed or other in allowed or (rel.as_posix(), other) in EXCEPTIONS:
                continue
            broken.append(f"{rel}:{line}: {me} imports {name} ({other} is not below {me})")
    assert not broken, "layering broken:\n" + "\n".join(broken)


def test_exceptions_are_still_needed() -> None:
    for (rel, other), why in EXCEPTIONS.items():
        names = [_unit(n) for _, n in _imports(SRC / rel)]
        assert other in names, f"{rel} no longer imports {other}; drop the exception ({why})"


def _module_files() -> dict[str, Path]:
    """Every module of the package by dotted name, type stubs (``.pyi`` without a ``.py``) included."""
    out: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py*")):
        if "__pycache__" in path.parts or path.suffix not in (".py", ".pyi"):
            continue
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.setdefault(".".join(parts), path)  # sorted: x.py comes before x.pyi
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports, from every import statement: top-level, lazy (inside functions) and
    ``if TYPE_CHECKING:`` alike. ``from a.b import c`` is an import of ``a.b.c`` when that is a module, else of
    ``a.b`` (for a package, its ``__init__``)."""
    files = _module_files()

    def resolve(name: str) -> str:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[module] |= {resolve(a.name) for a in node.names if a.name.split(".")[0] == "deepclf"}
            elif (
                isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "deepclf"
            ):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    graph[module].add(full if full in files else resolve(node.module or ""))
        graph[module].discard(module)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = import_cycles(graph)
    shown = [
        "  " + " <-> ".join(c) + "\n    " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles
    ]
    assert not cycles, "modules that import each other (lazily or not); break each cycle:\n" + "\n".join(shown)


def test_the_cycle_check_finds_a_cycle() -> None:
    # a lazy import back is a cycle too: what the check exists to catch
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


# Each package's public names (its __all__), pinned: adding or removing one is an API change, made here on purpose.
PUBLIC = {
    "deepclf.clients": [
        "Aborted",
        "AlreadyExists",
        "AsyncGrpcClient",
        "AsyncRestClient",
        "Cancelled",
        "Classification",
        "ConnectError",
        "DEFAULT_TIMEOUT",
        "DataLoss",
        "DeadlineExceeded",
        "FailedPrecondition",
        "GZIP_THRESHOLD",
        "GrpcClient",
        "Internal",
        "InvalidInput",
        "LocalClient",
        "ModelMetadata",
        "ModelNotFound",
        "ModelStatus",
        "NO_RETRIES",
        "OutOfRange",
        "PermissionDenied",
        "ProtocolError",
        "RemotePredictor",
        "ResourceExhausted",
        "RestClient",
        "RetryPolicy",
        "ServingError",
        "TLSError",
        "TimeoutError",
        "TransportError",
        "Unauthenticated",
        "Unavailable",
        "Unimplemented",
        "Unknown",
        "VersionStatus",
        "connect",
        "is_retryable",
        "map_grpc_error",
        "map_http_error",
    ],
    "deepclf.protocol": [
        "Aborted",
        "AlreadyExists",
        "Cancelled",
        "Code",
        "DataLoss",
        "DataType",
        "DeadlineExceeded",
        "FailedPrecondition",
        "GET_MODEL_METADATA",
        "GET_MODEL_STATUS",
        "GetModelMetadataRequest",
        "GetModelMetadataResponse",
        "GetModelStatusRequest",
        "GetModelStatusResponse",
        "Internal",
        "InvalidInput",
        "METHODS",
        "MODEL_SERVICE",
        "Method",
        "ModelNotFound",
        "ModelSpec",
        "ModelVersionState",
        "ModelVersionStatus",
        "OutOfRange",
        "PREDICT",
        "PREDICTION_SERVICE",
        "PermissionDenied",
        "PredictRequest",
        "PredictResponse",
        "ResourceExhausted",
        "RestRequest",
        "ServingError",
        "SignatureDef",
        "SignatureDefMap",
        "StatusProto",
        "TensorInfo",
        "TensorProto",
        "TensorShapeProto",
        "Unauthenticated",
        "Unavailable",
        "Unimplemented",
        "Unknown",
        "datatype_for",
        "decode_error",
        "decode_predict_request",
        "decode_predict_response",
        "encode_error",
        "encode_predict_request",
        "encode_predict_response",
        "error_for_grpc",
        "error_for_http",
        "from_exception",
        "generic_handler",
        "grpc_code_for",
        "http_status_for",
        "model_metadata_from_json",
        "model_metadata_to_json",
        "model_spec",
        "model_status_from_json",
        "model_status_to_json",
        "numpy_dtype_for",
        "pack_signature_defs",
        "shape_of",
        "shape_proto",
        "to_ndarray",
        "to_tensor_proto",
        "unary_unary",
        "unpack_signature_defs",
    ],
    "deepclf.runtime": [
        "Classification",
        "FORMATS",
        "Runner",
        "SignatureSpec",
        "TensorSpec",
        "load_runner",
        "resolve_model_path",
        "softmax",
        "standard_signatures",
    ],
    "deepclf.serving": ["EdgeServer", "ModelConfig", "SERVE_FORMATS", "ServerConfig", "load_version"],
    "deepclf.bench": [
        "Batch",
        "FunctionTarget",
        "LatencyOptions",
        "LatencyReport",
        "ParityImages",
        "ParityReport",
        "ScenarioConfig",
        "Target",
        "Thresholds",
        "parse_target",
        "percentile",
        "quick_report",
        "run_latency",
        "run_parity",
        "run_scenario",
        "sample_images",
        "summarize",
    ],
    "deepclf.data": [
        "CheckReport",
        "FLOWERS_SHA256",
        "FLOWERS_URL",
        "check_folder",
        "index_folder",
        "resolve_dataset",
        "split_files",
    ],
    "deepclf.deploy.tfserving": [
        "DEFAULT_IMAGE",
        "ModelEntry",
        "TFServingOptions",
        "batching_parameters",
        "config_files",
        "docker_compose",
        "k8s_manifests",
        "models_config",
        "monitoring_config",
        "readme",
        "render_bundle",
        "scan_models",
        "server_args",
        "version_labels",
        "write_bundle",
    ],
    "deepclf.signatures": [
        "CLASSIFY_BATCH",
        "Classification",
        "SignatureSpec",
        "TensorSpec",
        "classifications",
        "standard_signatures",
    ],
    "deepclf.versions": [
        "MAX_VERSION",
        "NoVersionError",
        "duplicate_versions",
        "expected_layout",
        "latest_version",
        "list_versions",
        "next_version",
        "parse_version",
        "require_latest_version",
        "skipped_folders",
        "version_numbers",
        "version_of_path",
    ],
    "deepclf.variants": [
        "DEFAULT_VARIANT",
        "RUNNER_FORMAT_PREFIX",
        "TFLITE_FILES",
        "VARIANTS",
        "VARIANT_NAMES",
        "Variant",
        "canonical_variant",
        "parse_variant",
        "variant_arg",
        "variant_of_file",
    ],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == PUBLIC[package], f"{package}.__all__ changed: update PUBLIC on purpose"
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names {name!r}, which it does not define"
