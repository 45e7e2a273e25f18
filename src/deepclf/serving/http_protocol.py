"""The HTTP/1.1 protocol uvicorn runs for the REST API: httptools (C) when installed, with a bound on request
heads and 400s that say what was wrong.

httptools parses a request in C instead of h11's pure Python, and that parsing is what an overloaded server spends
its event loop on: every connection's request and every refusal goes through it (the two fronts measured back to
back: docs/results/2026-12-01-reliability.md). Three things uvicorn's httptools protocol does not do, added here:

- A bound on the request line and headers (``MAX_HEAD_BYTES``): httptools keeps a header being received in
  memory however long it grows, and uvicorn sets no limit (h11's was 16 KiB), so one connection sending
  megabytes of header would be buffered whole. Past the bound: 431 with the limit, and the connection closed.
- A time limit on the head (``HEAD_TIMEOUT_SECONDS``): uvicorn only closes connections idle between requests, so a
  client that connects and sends nothing, or trickles a head, held its connection for ever (and enough of them
  fill ``limit_concurrency``, after which every request, ``/healthz`` too, is answered 503). Past it: 408, or
  the connection closed when nothing was sent.
- uvicorn answers every request httptools refuses with the same "Invalid HTTP request received.", whatever the
  problem; the parser's own reason is added::

    uvicorn.Config(app, http=http_protocol())   # DeepclfHttpTools, or "h11" where httptools is missing

    # GET with a 100 KB path ->
    # 400 Invalid HTTP request received: url is too long: url length of 100011 bytes exceeds the maximum of 65535
"""

from __future__ import annotations

import sys
from typing import Any

#: The longest reason appended to uvicorn's message (the parser's messages are one short line).
MAX_REASON_CHARS = 200
#: The most bytes a request's line and headers may take: httptools' own URL limit (64 KiB) plus room for headers.
MAX_HEAD_BYTES = 96 * 1024
#: Seconds a request's head may take to arrive, from its first byte (or from the connection's opening) to its last
#: header; past it, 408 and the connection closed. uvicorn bounds only the idle time between requests
#: (``timeout_keep_alive``), so a client trickling a head, or connecting and sending nothing, held its connection
#: (and a place under ``limit_concurrency``) for ever. Read at each connection, so tests can shorten it.
HEAD_TIMEOUT_SECONDS = 30.0
#: Seconds a refused connection is kept half-closed, its incoming bytes read and dropped, before it is closed: a
#: client still sending when the answer left then reads the answer instead of a connection reset.
LINGER_SECONDS = 2.0


def describe_parse_error(message: str, exc: BaseException | None) -> str:
    """``message`` with the reason ``exc`` gives, in printable ASCII (uvicorn encodes the body as ASCII).

    A callback's own error (uvicorn parses the URL in ``on_headers_complete``) reaches uvicorn as httptools'
    ``HttpParserCallbackError("User callback error")``; the real reason is the exception it was raised from.
    """
    import httptools

    if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
        exc = exc.__context__
    reason = " ".join(str(exc).split()) if exc is not None else ""
    reason = reason.encode("ascii", "replace").decode("ascii")[:MAX_REASON_CHARS]
    return f"{message.rstrip('.')}: {reason}" if reason else message


def http_protocol() -> Any:
    """What ``uvicorn.Config(http=...)`` takes: ``DeepclfHttpTools`` with httptools installed, else ``"h11"``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed (platforms without its wheel): h11 names its errors itself
        return "h11"

    from uvicorn.protocols.http.httptools_impl import STATUS_LINE

    class DeepclfHttpTools(HttpToolsProtocol):
        # Bytes received while a request's head is incomplete, counted per data_received chunk. A chunk in which a
        # request begins or ends is not counted (it may hold the previous request's body, or this one's), so what
        # httptools can hold for one head is at most MAX_HEAD_BYTES plus two chunks (uvloop reads up to 256 KiB).
        _head_bytes = 0
        _in_head = True  # the next bytes start a request
        _boundary = False  # a request began or ended in the chunk being parsed
        _discarding = False  # refused: what still arrives is dropped until the connection closes

        _head_timer: Any = None  # asyncio.TimerHandle while a head is awaited
        _head_started = False  # a byte of the awaited head has arrived

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if not self._head_started:
                self.transport.close()  # connected and sent nothing: nobody to answer
                return
            self._refuse(408, f"Request Timeout: the request line and headers took over {HEAD_TIMEOUT_SECONDS:g} s")

        def data_received(self, data: bytes) -> None:
            if self._discarding:
                return
            self._boundary = False
            super().data_received(data)
            if not self._in_head or self._boundary or self.transport.is_closing():
                return
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(
                    431,
                    f"Request Header Fields Too Large: the request line and headers are over {MAX_HEAD_BYTES} bytes",
                )

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._boundary, self._head_bytes = True, True, 0
            self._head_started = True
            self._arm_head_timer()  # from this request's first byte

        def on_headers_complete(self) -> None:
            self._in_head, self._head_started = False, False
            self._cancel_head_timer()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._boundary = True, True

        def _refuse(self, status: int, text: str) -> None:
            """Answer ``status`` with ``text`` and close, for a head that is too large or too slow."""
            self._cancel_head_timer()
            if self.cycle is not None and not self.cycle.response_complete:
                # a pipelined head behind a request still being answered: no answer can be ours to write;
                # closing is what uvicorn does for any connection lost mid-request
                self.transport.close()
                return
            message = text.encode("ascii")
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head.append(b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n")
            head.append(b"content-length: %d\r\n\r\n" % len(message))
            self.transport.write(b"".join([*head, message]))
            # half-close and linger (as nginx does): closing now, with the client's bytes unread, would reset the
            # connection and could destroy the answer before the client reads it
            self._discarding = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

        def send_400_response(self, msg: str) -> None:
            # uvicorn calls this inside its `except httptools.HttpParserError:` block, so the parser's exception
            # is still the one being handled
            super().send_400_response(describe_parse_error(msg, sys.exc_info()[1]))

    return DeepclfHttpTools
