"""The REST API's HTTP parser (httptools through uvicorn) refuses what it cannot parse with a 400 that says why,
on a real server over loopback."""

from __future__ import annotations

import socket

import httptools
import pytest

from deepclf.serving.http_protocol import MAX_REASON_CHARS, describe_parse_error, http_protocol


def _raw(server, data: bytes) -> tuple[int, str]:
    host, port = server.rest_url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_the_server_runs_httptools_with_named_errors(server):
    assert http_protocol().__name__ == "NamedErrorHttpTools"
    status, body = _raw(server, b"GET /v1/models/" + b"m" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    assert body.startswith("Invalid HTTP request received: url is too long: url length of 70011 bytes"), body


@pytest.mark.parametrize(
    "request_bytes, reason",
    [
        (b"GET /v1/models/flowers HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", "content-length"),
        (b"GET /v1/models/flowers HTTP/1.1\r\nHo st: x\r\n\r\n", "header"),
        (b"G\x00T / HTTP/1.1\r\n\r\n", "method"),
    ],
    ids=["bad-content-length", "space-in-header-name", "bad-method"],
)
def test_malformed_requests_get_400_with_the_parsers_reason(server, request_bytes, reason):
    status, body = _raw(server, request_bytes)
    assert status == 400
    assert body.startswith("Invalid HTTP request received: ") and reason in body.lower(), body


def test_a_callbacks_error_is_described_by_what_it_was_raised_from():
    try:
        try:
            raise httptools.HttpParserInvalidURLError("url is too long")
        except httptools.HttpParserInvalidURLError:
            raise httptools.HttpParserCallbackError("User callback error") from None
    except httptools.HttpParserCallbackError as exc:
        # `from None` hides the cause from tracebacks but __context__ still holds it, as in httptools
        assert describe_parse_error("Invalid HTTP request received.", exc) == (
            "Invalid HTTP request received: url is too long"
        )


def test_the_reason_is_short_printable_ascii_and_its_absence_keeps_the_message():
    exc = httptools.HttpParserError("bad \u00e9\n byte " + "x" * 1000)
    text = describe_parse_error("Invalid HTTP request received.", exc)
    assert text.isascii() and "\n" not in text and "bad ? byte" in text
    assert len(text) == len("Invalid HTTP request received: ") + MAX_REASON_CHARS
    assert describe_parse_error("Invalid HTTP request received.", None) == "Invalid HTTP request received."
