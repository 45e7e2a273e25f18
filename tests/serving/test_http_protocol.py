"""The REST API's HTTP parser (httptools through uvicorn) refuses what it cannot parse with a 400 that says why,
on a real server over loopback."""

from __future__ import annotations

import re
import socket

import httptools
import pytest

from deepclf.serving.http_protocol import MAX_HEAD_BYTES, MAX_REASON_CHARS, describe_parse_error, http_protocol


def _connect(server) -> socket.socket:
    host, port = server.rest_url.split("//")[1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(s: socket.socket) -> bytes:
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    return answer


def _raw(server, data: bytes) -> tuple[int, str]:
    with _connect(server) as s:
        s.sendall(data)
        answer = _read_all(s)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def _status_lines(answer: bytes) -> list[int]:
    # answers follow one another on the connection; a JSON body does not end with a line break
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def test_the_server_runs_httptools_with_named_errors(server):
    assert http_protocol().__name__ == "DeepclfHttpTools"
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


@pytest.mark.parametrize("piece", [b"a" * 16384, (b"X-H: " + b"v" * 100 + b"\r\n") * 150], ids=["one-header", "many"])
def test_a_head_past_the_bound_is_refused_431_and_not_buffered(server, piece):
    # sent piece by piece, as a slow client would (one sendall would also do: the server drops what follows)
    with _connect(server) as s:
        s.sendall(b"GET /v1/models/flowers HTTP/1.1\r\nHost: x\r\n" + (b"X-Big: " if len(piece) == 16384 else b""))
        sent = 0
        while sent < 4 * MAX_HEAD_BYTES:
            s.sendall(piece)
            sent += len(piece)
        answer = _read_all(s)  # the server half-closed after its answer: EOF, not a reset
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert f"request line and headers are over {MAX_HEAD_BYTES} bytes".encode() in answer
    assert _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200


def test_a_head_under_the_bound_is_served(server):
    headers = (b"X-H: " + b"v" * 100 + b"\r\n") * ((MAX_HEAD_BYTES - 4096) // 107)
    with _connect(server) as s:
        for i in range(0, len(headers), 8192):  # in pieces: counted across chunks
            s.sendall((b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if i == 0 else b"") + headers[i : i + 8192])
        s.sendall(b"Connection: close\r\n\r\n")
        assert _status_lines(_read_all(s)) == [200]


def test_the_chunk_that_ends_a_body_is_not_counted_as_the_next_head(server):
    # A request that ends inside a large chunk must not count that chunk toward the next request's head: it did
    # once, and a kept-alive connection whose body ended in a 200 KB read was refused 431. The body's last 200 KB
    # are sent on their own after a pause, so that the server reads them in one chunk.
    import time

    body = b'{"instances": [' + b"0," * 200_000 + b"0]}"
    head = b"POST /v1/models/flowers:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with _connect(server) as s:
        s.sendall(head + body[:-200_000])
        time.sleep(0.3)
        s.sendall(body[-200_000:])
        time.sleep(0.3)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        statuses = _status_lines(_read_all(s))
    assert statuses == [400, 200], statuses  # the rows limit (200,001 rows), then the health check; never 431


def test_a_head_that_does_not_arrive_in_time_is_refused_408(server, monkeypatch):
    import time

    from deepclf.serving import http_protocol

    monkeypatch.setattr(http_protocol, "HEAD_TIMEOUT_SECONDS", 0.5)  # read at each connection
    with _connect(server) as trickling, _connect(server) as silent:
        trickling.sendall(b"GET /v1/models/flowers HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        for _ in range(3):  # bytes keep coming, the head never ends
            time.sleep(0.2)
            trickling.sendall(b"a")
        answer = _read_all(trickling)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"the request line and headers took over 0.5 s" in answer
        assert time.monotonic() - t0 < 5
        assert _read_all(silent) == b""  # connected and sent nothing: closed without an answer
    # a kept-alive connection between requests is uvicorn's keep-alive timeout's, not this one's
    with _connect(server) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1.0)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status_lines(_read_all(s)) == [200, 200]
