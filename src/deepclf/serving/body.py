"""Reading a REST request body: the size limit before and while reading, and gzip inflated as it arrives.

::

    body = await read_body(request, limit=64 << 20, offload=in_pool)   # bytes; 413, 415 or 400 when refused

Request bodies may be gzip-compressed (``Content-Encoding: gzip``, as TF Serving accepts). They are inflated as
they arrive, ``limit`` applying to both the compressed and the decompressed size (a zip bomb is cut off at the
limit with 413, never inflated in full); a corrupt or truncated gzip stream is a 400 that says so.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from deepclf.protocol.errors import InvalidInput, ResourceExhausted
from deepclf.serving.config import NOT_IN_TF_SERVING


class BodyTooLarge(ResourceExhausted):
    """The request body is over ``--max_body_bytes``; answered with HTTP 413 (Payload Too Large)."""

    def __init__(self, message: str) -> None:
        # RESOURCE_EXHAUSTED maps to 429 in TF Serving's table; a body over the limit is 413 in HTTP's terms.
        super().__init__(message, http_status=413)


class UnsupportedEncoding(InvalidInput):
    """A ``Content-Encoding`` other than gzip/identity; answered with HTTP 415 (Unsupported Media Type)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, http_status=415)


#: A gzip body may inflate to at most this many times its compressed size once it is over ``_RATIO_FREE`` bytes:
#: real tensors and images compress 2-20x; a bomb is ~1000x. Refused with 413 as it inflates, never in full.
MAX_GZIP_RATIO = 250
_RATIO_FREE = 1 << 20


class GzipInflater:
    """Inflates a gzip body chunk by chunk, never producing more than ``limit`` bytes in all (zip-bomb safe),
    nor more than ``MAX_GZIP_RATIO`` times the compressed bytes fed so far (past the first MiB).

    ``feed(chunk)`` returns the bytes the chunk inflates to; ``finish()`` checks the stream ended. Concatenated
    gzip members (valid gzip, what ``cat a.gz b.gz`` makes) are inflated one after the other.
    """

    _WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.compressed = 0
        self._d = zlib.decompressobj(self._WBITS)
        self._started = False

    #: Compressed bytes inflated per step: the ratio cap is checked against what was fed so far, so a bomb is
    #: stopped after ~250 x 16 KiB of output, never after inflating up to ``limit``.
    _STEP = 16 * 1024

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        view = memoryview(data)
        for start in range(0, len(view), self._STEP):
            self._feed(bytes(view[start : start + self._STEP]), out)
        return b"".join(out)

    def _cap(self) -> int:
        """The most this body may inflate to so far: ``limit``, and ``MAX_GZIP_RATIO`` x the compressed bytes
        fed (past the first ``_RATIO_FREE`` bytes)."""
        return min(self.limit, max(_RATIO_FREE, MAX_GZIP_RATIO * self.compressed))

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        self.compressed += len(data)
        while data:
            if self._d.eof:  # the next gzip member (padding zeros after the last one are ignored, as gzip does)
                if not data.strip(b"\x00"):
                    return
                self._d = zlib.decompressobj(self._WBITS)
            self._started = True
            cap = self._cap()
            try:
                # max_length: one byte over the cap is enough to refuse, so nothing beyond it is ever inflated.
                piece = self._d.decompress(data, cap - self.size + 1)
            except zlib.error as exc:
                raise InvalidInput(f"the request body is not valid gzip (Content-Encoding: gzip): {exc}") from None
            self.size += len(piece)
            if self.size > self.limit:
                raise BodyTooLarge(
                    f"the gzip request body inflates to over {self.limit} bytes (--max_body_bytes "
                    "applies to the decompressed size); send fewer or smaller images per request"
                )
            if self.size > cap:
                raise BodyTooLarge(
                    f"the gzip request body inflates more than {MAX_GZIP_RATIO} times its compressed size "
                    f"({self.compressed} bytes -> over {self.size}); refused as a compression bomb"
                )
            out.append(piece)
            data = self._d.unconsumed_tail or (self._d.unused_data if self._d.eof else b"")

    def finish(self) -> None:
        if not self._started:
            raise InvalidInput("the request body is empty but says Content-Encoding: gzip")
        if not self._d.eof:
            raise InvalidInput(
                "the gzip request body is truncated (the gzip stream does not end); send the whole compressed body"
            )


def _content_encodings(request: Request) -> list[str]:
    header = request.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    for c in codings:
        if c not in ("gzip", "x-gzip"):
            raise UnsupportedEncoding(
                f"Content-Encoding {header!r} is not supported; send the body as it is "
                "or gzip-compressed (Content-Encoding: gzip)"
            )
    if len(codings) > 1:
        raise UnsupportedEncoding(f"Content-Encoding {header!r}: a body compressed more than once is not supported")
    return codings


async def read_body(request: Request, limit: int, offload: Callable[..., Any] | None = None) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before or while reading it.

    A gzip body (``Content-Encoding: gzip``) is inflated as it arrives; ``limit`` bounds the compressed and the
    decompressed size alike, ``MAX_GZIP_RATIO`` the ratio. ``offload`` (``await offload(fn, *args)``) runs the
    inflating off the event loop (the worker pool), so a large body never stalls the other connections.
    """
    inflater = GzipInflater(limit) if _content_encodings(request) else None
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidInput(f"Content-Length must be an integer, got {declared!r}") from None
        if size > limit:
            raise BodyTooLarge(
                f"request body is {size} bytes; this server accepts at most {limit} bytes "
                f"(--max_body_bytes{NOT_IN_TF_SERVING}); send fewer or smaller images per request"
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(
                f"request body is over {limit} bytes (--max_body_bytes{NOT_IN_TF_SERVING}); send fewer or smaller "
                "images per request"
            )
        chunks.append(chunk)
    if inflater is None:
        return b"".join(chunks)

    def inflate() -> bytes:
        assert inflater is not None
        out = [inflater.feed(c) for c in chunks]
        inflater.finish()
        return b"".join(out)

    return await offload(inflate) if offload is not None else inflate()
