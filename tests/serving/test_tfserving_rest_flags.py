"""REST behaviours of ``tensorflow_model_server`` that a command line or a browser relies on, against a real
``deepclf serve`` (a child process, TensorFlow blocked) over loopback (docs/tfserving-behaviour.md §5.1):

* ``--rest_api_enable_cors_support``: TF Serving's three CORS headers on every answer under ``/v1/``
  (http_rest_api_util.cc ``AddCORSHeaders``); an ``OPTIONS`` preflight is answered 200 with an empty body when the
  ``Origin`` header holds ``http(s)://``, 400 otherwise, with or without the flag (http_server.cc
  ``ProcessRequest``); any other method than GET/POST is TF Serving's "Malformed request" 400.
* Paths are case-insensitive as TF Serving's route regexes are (``(?i)``, http_rest_api_util.cc), the verb and
  ``metadata`` compared as written afterwards (http_rest_api_handler.cc ``ProcessRequest``).
* A client that disconnects in the middle of its body is one short log line, not an internal error with a
  traceback, and the next client is served.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.serving.child_server import child_server

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}


def _cors_headers(r: requests.Response) -> dict[str, str]:
    """The answer's CORS headers, names in TF Serving's spelling (HTTP header names are case-insensitive; uvicorn
    writes them in lower case)."""
    spelling = {name.lower(): name for name in CORS}
    return {spelling.get(k.lower(), k): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


@dataclass
class Servers:
    """Two servers of half_plus_two: REST URLs with and without ``--rest_api_enable_cors_support``."""

    urls: dict[bool, str]
    stderr: Path  # the second one's (without the flag)

    def __getitem__(self, cors: bool) -> str:
        return self.urls[cors]


@pytest.fixture(scope="module")
def cors_servers(models_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Two servers of half_plus_two, with and without ``--rest_api_enable_cors_support``."""
    tmp = tmp_path_factory.mktemp("cors")
    base = [
        "--port=0",
        "--rest_api_port=0",
        "--model_name=half_plus_two",
        f"--model_base_path={models_root / 'half_plus_two'}",
        "--threads=1",
    ]
    with (
        child_server([*base, "--rest_api_enable_cors_support"], tmp / "on.stderr") as (_p1, _g1, on),
        child_server(base, tmp / "off.stderr") as (_p2, _g2, off),
    ):
        yield Servers({True: on, False: off}, tmp / "off.stderr")


@pytest.mark.parametrize("enabled", [True, False])
def test_cors_headers_on_every_v1_answer(cors_servers: Servers, enabled: bool) -> None:
    rest = cors_servers[enabled]
    want = CORS if enabled else {}
    answers = [
        requests.post(f"{rest}/v1/models/half_plus_two:predict", json={"instances": [1.0]}, timeout=30),  # 200
        requests.post(f"{rest}/v1/models/half_plus_two:predict", json={"instances": "x"}, timeout=30),  # 400
        requests.get(f"{rest}/v1/models/nosuch", timeout=30),  # 404
        requests.get(f"{rest}/v1/models/half_plus_two/metadata", timeout=30),  # 200
        requests.put(f"{rest}/v1/models/half_plus_two:predict", data=b"{}", timeout=30),  # 400 Malformed
    ]
    assert [r.status_code for r in answers] == [200, 400, 404, 200, 400]
    for r in answers:
        assert _cors_headers(r) == want, (r.request.method, r.url, r.headers)
        assert r.headers["content-type"] == "application/json"
    # Outside TF Serving's dispatcher path: no CORS headers, flag or not.
    assert _cors_headers(requests.get(f"{rest}/monitoring/prometheus/metrics", timeout=30)) == {}


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://localhost:3000", 200),
        ("https://app.example.com", 200),
        ("null", 400),  # a page opened from a file
        (None, 400),  # no Origin header: "Origin header is missing in CORS preflight"
    ],
)
def test_options_preflight(cors_servers: Servers, enabled: bool, origin: str | None, status: int) -> None:
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    if origin is not None:
        headers["Origin"] = origin
    r = requests.options(f"{cors_servers[enabled]}/v1/models/half_plus_two:predict", headers=headers, timeout=30)
    assert r.status_code == status
    assert r.content == b"" and "content-type" not in r.headers  # TF Serving writes no body and no Content-Type
    assert _cors_headers(r) == (CORS if enabled else {})


def test_other_methods_are_malformed_requests(cors_servers: Servers) -> None:
    """TF Serving's handler answers any method but GET/POST (and OPTIONS) "Malformed request: <METHOD> <path>"."""
    for method in ("PUT", "DELETE", "PATCH"):
        r = requests.request(method, f"{cors_servers[False]}/v1/models/half_plus_two", timeout=30)
        assert r.status_code == 400
        assert r.json() == {"error": f"Malformed request: {method} /v1/models/half_plus_two"}


# -- case-insensitive routes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "answer"),
    [
        ("POST", "/V1/MODELS/half_plus_two:predict", 200, "predictions"),
        ("POST", "/v1/Models/half_plus_two/VERSIONS/1:predict", 200, "predictions"),
        ("POST", "/v1/models/half_plus_two/LABELS/stable:predict", 400, "Unrecognized servable version label: stable"),
        ("POST", "/v1/models/half_plus_two:PREDICT", 400, "Malformed request: POST /v1/models/half_plus_two:PREDICT"),
        ("POST", "/v1/models/HALF_PLUS_TWO:predict", 404, "HALF_PLUS_TWO"),  # a model name keeps its case
        ("GET", "/V1/MODELS/half_plus_two", 200, "model_version_status"),
        ("GET", "/v1/models/half_plus_two/versions/1/metadata", 200, "metadata"),
        ("GET", "/v1/models/half_plus_two/METADATA", 200, "model_version_status"),  # not "metadata": a status call
    ],
)
def test_rest_paths_are_case_insensitive_as_tf_servings_routes(
    cors_servers: Servers, method: str, path: str, status: int, answer: str
) -> None:
    r = requests.request(method, f"{cors_servers[False]}{path}", json={"instances": [1.0]}, timeout=30)
    assert r.status_code == status, r.text
    doc = r.json()
    assert answer in (doc if status == 200 else doc["error"]), doc


def test_other_paths_keep_their_case(cors_servers: Servers) -> None:
    """Outside ``/v1/`` (TF Serving's dispatcher) a path is matched as written."""
    assert requests.get(f"{cors_servers[False]}/MONITORING/prometheus/metrics", timeout=30).status_code == 404


# -- a client that goes away in the middle of its body -------------------------------------------------------------


def test_client_disconnecting_mid_body_is_one_line_and_the_next_client_is_served(cors_servers: Servers) -> None:
    rest = cors_servers[False]
    host, port = rest.removeprefix("http://").rsplit(":", 1)
    stderr = cors_servers.stderr
    path = "/v1/models/half_plus_two:predict"
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000\r\n\r\n".encode()
                + b'{"instances": [1.0, 2.0, '
            )
            time.sleep(0.2)  # the server is reading the body when the client goes
    deadline = time.monotonic() + 10
    while stderr.read_text().count("disconnected before sending the whole request body") < 3:
        assert time.monotonic() < deadline, stderr.read_text()[-3000:]
        time.sleep(0.1)
    r = requests.post(f"{rest}{path}", json={"instances": [1.0]}, timeout=30)
    assert r.json() == {"predictions": [2.5]}
    log = stderr.read_text()
    lines = [line for line in log.splitlines() if "disconnected before sending the whole request body" in line]
    assert len(lines) == 3 and all(f"POST {path}" in line and len(line) < 300 for line in lines)
    assert "Traceback" not in log and "internal error" not in log and "ClientDisconnect" not in log
