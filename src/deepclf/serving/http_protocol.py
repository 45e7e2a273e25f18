"""The HTTP/1.1 protocol uvicorn runs for the REST API: httptools (C) when installed, with 400s that say what
was wrong.

httptools parses a request several times faster than h11 (pure Python), which is what an overloaded server
spends its event loop on: every connection's request and every refusal goes through it (``pyproject.toml``,
``[edge]``, has the measurement). But uvicorn answers every request httptools refuses with the same "Invalid HTTP
request received.", whatever the problem; ``NamedErrorHttpTools`` adds the parser's own reason::

    uvicorn.Config(app, http=http_protocol())   # NamedErrorHttpTools, or "h11" where httptools is missing

    # GET with a 100 KB path ->
    # 400 Invalid HTTP request received: url is too long: url length of 100011 bytes exceeds the maximum of 65535
"""

from __future__ import annotations

import sys
from typing import Any

#: The longest reason appended to uvicorn's message (the parser's messages are one short line).
MAX_REASON_CHARS = 200


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
    """What ``uvicorn.Config(http=...)`` takes: ``NamedErrorHttpTools`` with httptools installed, else ``"h11"``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed (platforms without its wheel): h11 names its errors itself
        return "h11"

    class NamedErrorHttpTools(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            # uvicorn calls this inside its `except httptools.HttpParserError:` block, so the parser's exception
            # is still the one being handled
            super().send_400_response(describe_parse_error(msg, sys.exc_info()[1]))

    return NamedErrorHttpTools
