"""REST behaviours of ``tensorflow_model_server`` that a command line or a browser relies on, against a real
``deepclf serve`` (a child process, TensorFlow blocked) over loopback (docs/tfserving-behaviour.md §5.1):

* ``--rest_api_enable_cors_support``: TF Serving's three CORS headers on every answer under ``/v1/``
  (http_rest_api_util.cc ``AddCORSHeaders``); an ``OPTIONS`` preflight is answered 200 with an empty body when the
  ``Origin`` header holds ``http(s)://``, 400 otherwise, with or without the flag (http_server.cc
  ``ProcessRequest``); any other method than GET/POST is TF Serving's "Malformed request" 400.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def cors_servers(models_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, str]]:
    """Two servers of half_plus_two, with and without ``--rest_api_enable_cors_support``: {flag: REST URL}."""
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
        yield {True: on, False: off}


@pytest.mark.parametrize("enabled", [True, False])
def test_cors_headers_on_every_v1_answer(cors_servers: dict[bool, str], enabled: bool) -> None:
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
def test_options_preflight(cors_servers: dict[bool, str], enabled: bool, origin: str | None, status: int) -> None:
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    if origin is not None:
        headers["Origin"] = origin
    r = requests.options(f"{cors_servers[enabled]}/v1/models/half_plus_two:predict", headers=headers, timeout=30)
    assert r.status_code == status
    assert r.content == b"" and "content-type" not in r.headers  # TF Serving writes no body and no Content-Type
    assert _cors_headers(r) == (CORS if enabled else {})


def test_other_methods_are_malformed_requests(cors_servers: dict[bool, str]) -> None:
    """TF Serving's handler answers any method but GET/POST (and OPTIONS) "Malformed request: <METHOD> <path>"."""
    for method in ("PUT", "DELETE", "PATCH"):
        r = requests.request(method, f"{cors_servers[False]}/v1/models/half_plus_two", timeout=30)
        assert r.status_code == 400
        assert r.json() == {"error": f"Malformed request: {method} /v1/models/half_plus_two"}
