"""One ``deepclf serve`` for the conformance tests, started with a ``tensorflow_model_server`` command line and
serving stand-ins for every model TF Serving's own tests load (docs/tfserving-conformance.md).

The command is the shape of TF Serving's test harness (tensorflow_model_server_test_base.py ``RunServer``)::

    deepclf serve --port=<free> --rest_api_port=<free> --rest_api_timeout_in_ms=5000 \\
        --model_config_file=<root>/conformance.config --allow_version_labels_for_unavailable_models=true

and the models (``MODELS``: name -> what it stands for):

* ``saved_model_half_plus_two_2_versions``: http_rest_api_handler_test.cc's server (half_plus_two, policy
  ``specific {123}``, label ``Version_Label`` -> 123);
* ``test_model``: predict_util_test.cc's / classification_service_test.cc's (half_plus_two, version 123);
* ``test_model_tf2``: multi_inference_test.cc's TF2 variant (``saved_model_half_plus_two_tf2_cpu``, 123);
* ``half_plus_two`` (123 and 124, labels stable/canary) and ``half_plus_three``: the models.config of
  tensorflow_model_server_test.py's config tests (tests/tfserving_models.py);
* ``classifier``, ``regressor``, ``counter``, ``json_tensor``: the fakes of the unit tests as real graphs
  (tests/tfserving_upstream_models.py).

Usage::

    with upstream_server(tmp_path) as srv:          # srv.rest_url, srv.grpc_target, srv.command
        httpx.post(srv.rest_url + "/v1/models/test_model:predict", json={"instances": [2.0]})
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deepclf.bench.process import free_port
from tests.serving.child_server import child_server, serve_command
from tests.tfserving_models import HALF_PLUS_THREE, HALF_PLUS_TWO, LABELS, save_half_plus_two_tf2
from tests.tfserving_upstream_models import BUILDERS, VERSION_DIR

HANDLER_MODEL = "saved_model_half_plus_two_2_versions"
HANDLER_LABEL = "Version_Label"
TEST_MODEL = "test_model"
TEST_MODEL_TF2 = "test_model_tf2"
_SERVERS = itertools.count()


@dataclass
class UpstreamServer:
    """A running conformance server: where it listens and the command line that started it."""

    rest_url: str
    grpc_target: str
    command: list[str]


def _entry(name: str, base: Path, extra: str = "") -> str:
    return f"  config {{ name: '{name}' base_path: '{base}' model_platform: 'tensorflow' {extra} }}\n"


def conformance_config(half_plus: Path, root: Path) -> str:
    """The models.config text (module docstring); ``half_plus`` is tests/tfserving_models.py's root."""
    hpt = half_plus / HALF_PLUS_TWO
    only_123 = "model_version_policy { specific { versions: 123 } }"
    labels = " ".join(f"version_labels {{ key: '{k}' value: {v} }}" for k, v in LABELS.items())
    entries = [
        _entry(HANDLER_MODEL, hpt, f"{only_123} version_labels {{ key: '{HANDLER_LABEL}' value: 123 }}"),
        _entry(TEST_MODEL, hpt, only_123),
        _entry(TEST_MODEL_TF2, root / "half_plus_two_tf2"),
        _entry(HALF_PLUS_TWO, hpt, f"model_version_policy {{ all {{}} }} {labels}"),
        _entry(HALF_PLUS_THREE, half_plus / HALF_PLUS_THREE),
        *(_entry(name, root / name) for name in BUILDERS),
    ]
    return "model_config_list {\n" + "".join(entries) + "}\n"


def build_conformance_root(half_plus: Path, root: Path) -> Path:
    """The TF2 half_plus_two and the unit tests' stand-ins under ``root``, and ``root/conformance.config``."""
    save_half_plus_two_tf2(root / "half_plus_two_tf2" / VERSION_DIR)
    for name, build in BUILDERS.items():
        build(root / name / VERSION_DIR)
    (root / "conformance.config").write_text(conformance_config(half_plus, root))
    return root


@contextlib.contextmanager
def upstream_server(root: Path, *extra_flags: str) -> Iterator[UpstreamServer]:
    """``deepclf serve`` on ``root/conformance.config`` with TF Serving's command line (module docstring)."""
    args = [
        f"--port={free_port()}",
        f"--rest_api_port={free_port()}",
        "--rest_api_timeout_in_ms=5000",
        f"--model_config_file={root / 'conformance.config'}",
        "--allow_version_labels_for_unavailable_models=true",
        *extra_flags,
    ]
    stderr = root / f"serve-{next(_SERVERS)}.stderr"  # two servers may share a root
    with child_server(args, stderr, tensorflow=True) as (_proc, grpc_target, rest_url):
        yield UpstreamServer(rest_url, grpc_target, [*serve_command(), *args])
