"""The edge test subset, run inside the arm64 root by its own pytest, on the project installed there with
``pip install '.[edge]'`` (tests/arm64/conftest.py ``edge_root``): the same tests ``make test`` runs on x86,
with the models made here (``DEEPCLF_TEST_PREBUILT``) since TensorFlow cannot be installed there.

What runs, by what it proves on arm64 (``SUBSET``; a file alone means all of it, else the tests named):
the LiteRT runner on every variant, ``deepclf predict``, ``deepclf serve`` with REST and gRPC and TF Serving's
flags, the clients against it, Classify on image bytes, the hostile-request quick subset, and the no-TensorFlow
import checks. The rest of those files is arch-independent Python (flag parsing, reloads, timeouts) whose run
under emulation would cost minutes and prove nothing more. Skips are allowed only for the tests that need
TensorFlow itself (the Keras and SavedModel runners); the test fails on any other skip.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import pytest

from .conftest import CHECKOUT, PREBUILT, SHARED_DATA, report

pytestmark = pytest.mark.arm64

#: A cheap slice of tests/serving/test_hostile.py's 113 cases, one or more of each kind: bad names, versions,
#: labels, signatures, dtypes and shapes, shapes that overflow or declare 10^9 values, undecodable and
#: decompression-bomb images (60000x60000 headers), malformed tf.Examples, bad JSON of each shape, corrupt gzip,
#: a body over the size limit. Left out: the cases whose payload itself is large (a 200 MB gzip bomb, 4.2 M JSON
#: values, 2,000 GIFs, four 6000x6000 JPEGs, 1 MB of headers), which take seconds natively and minutes emulated.
HOSTILE_QUICK = (
    "grpc-name-empty",
    "grpc-name-invalid-utf8",
    "grpc-version-unknown",
    "grpc-label-unknown",
    "grpc-signature-unknown",
    "grpc-dtype-string-for-float",
    "grpc-shape-wrong-dims",
    "grpc-shape-overflows-int64",
    "grpc-shape-2^62x2^62",
    "grpc-one-float-val-1x1e9",
    "grpc-tensor-content-short",
    "grpc-nan-pixels",
    "grpc-not-an-image",
    "grpc-gif-60000px",
    "grpc-png-60000px",
    "grpc-malformed-tf-example",
    "grpc-classify-not-an-image",
    "grpc-multi-mixed-models",
    "rest-not-json",
    "rest-truncated-json",
    "rest-both-keys",
    "rest-ragged",
    "rest-strings-for-floats",
    "rest-nan-pixel",
    "rest-nested-40",
    "rest-b64-not-an-image",
    "rest-gif-60000px",
    "rest-png-60000px",
    "rest-content-length-over-limit",
    "rest-gzip-corrupt",
    "rest-unknown-model",
    "rest-version-23-digits",
    "rest-classify-malformed-example",
    "rest-regress-flowers",
)

HOSTILE = "tests/serving/test_hostile.py"
#: What runs, by file: None for the whole file, else the tests named.
SUBSET: dict[str, tuple[str, ...] | None] = {
    # the LiteRT runner on every variant (its Keras and SavedModel parameters skip: no TensorFlow)
    "tests/runtime/test_runtime_runners.py": None,
    # `deepclf predict`, and LiteRT use that never loads TensorFlow
    "tests/runtime/test_runtime_edge.py": None,
    # `deepclf serve` over REST and gRPC, TF Serving's flags
    "tests/serving/test_server_api.py": None,
    "tests/serving/test_serve_tfserving_flags.py": None,
    # Classify on image bytes (tf.Example)
    "tests/serving/test_classify_image.py": None,
    # the clients against the server
    "tests/clients/test_edge.py": None,
    "tests/clients/test_cli.py": None,
    # the no-TensorFlow import checks
    "tests/clients/test_no_tensorflow.py": None,
    "tests/protocol/test_no_tensorflow.py": None,
    # the hostile-request quick subset, then the suite's peak-RSS check (last, as in the file)
    HOSTILE: (
        "test_at_least_60_distinct_cases",
        *(f"test_hostile_request_is_refused_cleanly[{case}]" for case in HOSTILE_QUICK),
        "test_peak_rss_growth_over_the_whole_suite",
    ),
}

#: Left out of those files, and why: each is Python whose outcome does not depend on the machine, or a time
#: limit written for a real CPU (emulation runs Python 5-10x and float SIMD up to 300x slower than this host).
DESELECT: dict[str, str] = {
    "tests/serving/test_server_api.py::test_curl_gives_the_same_answers": "no curl in the minimal root",
    "tests/serving/test_server_api.py::test_grpc_accepts_messages_over_the_4mb_default": "a 4 MB+ message: 80 s emulated; message limits are not per-architecture",
    "tests/serving/test_serve_tfserving_flags.py::test_tfserving_documented_command_lines_start": "seven server starts, 30 s each emulated; the flags are parsed the same on any machine (the in-process tests of the file cover them)",
    "tests/serving/test_serve_tfserving_flags.py::test_models_config_reload_adds_and_removes_models_live": "polls a config file with time limits written for a real CPU",
    "tests/clients/test_edge.py::test_large_batch_over_grpc_default_message_limit": "600 images in one message: 60 s emulated; message limits are not per-architecture",
    "tests/clients/test_edge.py::test_classify_is_identical_to_in_process": "40 photos in one call take 20-30 s emulated, over the clients' 10 s default deadline (test_serve_x86_clients.py classifies through the arm64 server with a longer one)",
    "tests/clients/test_edge.py::test_status_and_metadata_by_version_and_label[grpc]": "gRPC's connect handshake times out while the in-process server is busy under emulation",
    "tests/clients/test_edge.py::test_gzip_request_bodies_give_the_same_answer": "50 s emulated; gzip is not per-architecture",
    "tests/clients/test_edge.py::test_wait_until_available_times_out_for_a_model_that_never_comes": "waits 0.3 s, less than one emulated gRPC status call takes (the last error is then a deadline, not ModelNotFound)",
    "tests/clients/test_cli.py::test_remote_predict_prints_the_local_output": "the CLI's default deadline is shorter than the first emulated call (120 s)",
    "tests/clients/test_no_tensorflow.py::test_import_time_is_reported": "times imports: emulation's time is not a board's",
}

#: Why a test may skip in the root: it needs TensorFlow.
ALLOWED_SKIP = "needs TensorFlow"


def node_ids() -> list[str]:
    ids: list[str] = []
    for path, tests in SUBSET.items():
        ids += [path] if tests is None else [f"{path}::{t}" for t in tests]
    return ids


def deselect_args() -> list[str]:
    return [arg for node in DESELECT for arg in ("--deselect", node)]


def test_edge_subset_passes_in_the_arm64_root(edge_root: Any) -> None:
    junit = "/root/edge-suite.xml"
    env = {"DEEPCLF_TEST_PREBUILT": PREBUILT, "PYTHONUNBUFFERED": "1"}
    env["DEEPCLF_TEST_DATA"] = (
        SHARED_DATA if edge_root.host_path(f"{SHARED_DATA}/flower_photos_mini").is_dir() else "none"
    )
    argv = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", f"--junitxml={junit}", "--durations=15"]
    proc = edge_root.run([*argv, *deselect_args(), *node_ids()], env=env, cwd=CHECKOUT, timeout=1500)
    out = proc.stdout + proc.stderr
    log = edge_root.cache.path / "logs" / "edge-suite.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(out)
    tail = f"(the whole output: {log})\n" + out[-6000:]
    xml_path = edge_root.host_path(junit)
    assert xml_path.is_file(), f"the arm64 pytest wrote no report (exit {proc.returncode}):\n{tail}"
    cases = ET.parse(xml_path).getroot().iter("testcase")
    dotted = {path.removesuffix(".py").replace("/", "."): path for path in SUBSET}
    outcome: Counter[str] = Counter()
    per_file: dict[str, Counter[str]] = {}
    bad_skips: list[str] = []
    for case in cases:
        kind = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                kind = "failed"
            elif child.tag == "skipped":
                kind = "skipped"
                if ALLOWED_SKIP not in (child.get("message") or ""):
                    bad_skips.append(f"{case.get('classname')}::{case.get('name')}: {child.get('message')}")
        outcome[kind] += 1
        cls = case.get("classname") or "?"
        path = next((p for d, p in dotted.items() if cls == d or cls.startswith(d + ".")), cls)
        per_file.setdefault(path, Counter())[kind] += 1
    summary = [line for line in out.splitlines() if " passed" in line or " failed" in line][-1:]
    report(
        "arm64: the edge subset inside the root (pi4)",
        [*summary, *(f"  {f}: {dict(c)}" for f, c in sorted(per_file.items()))],
    )
    assert proc.returncode == 0 and outcome["failed"] == 0, f"the edge subset failed in the arm64 root:\n{tail}"
    assert not bad_skips, "skipped in the arm64 root for a reason other than TensorFlow:\n" + "\n".join(bad_skips)
    assert len(per_file) == len(SUBSET), f"files without a result: {sorted(SUBSET)} vs {sorted(per_file)}"
    empty = [f for f, c in per_file.items() if c["passed"] == 0]
    assert not empty, f"no test passed in {empty}"
