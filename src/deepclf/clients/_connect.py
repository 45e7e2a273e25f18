"""A client from a URL, and a client bound to one model (what ``deepclf predict --server`` uses)::

connect("http://localhost:8501")          # RestClient
connect("grpc://localhost:8500")          # GrpcClient (grpcs:// for TLS)
p = RemotePredictor(connect(url), model="flowers")
p.classify(["rose.jpg"], top_k=3); p.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepclf.clients._classify import SEND_TENSOR, check_send
from deepclf.errors import UsageError
from deepclf.signatures import Classification


def connect(url: str, **options: Any) -> Any:
    """``http(s)://host:port`` -> ``RestClient``; ``grpc(s)://host:port`` -> ``GrpcClient``; ``options`` go to it."""
    if not isinstance(url, str):
        raise UsageError(f"a server URL must be a string like grpc://host:8500 or http://host:8501, got {url!r}")
    if url.startswith(("http://", "https://")):
        from deepclf.clients._rest import RestClient

        return RestClient(url, **options)
    if url.startswith(("grpc://", "grpcs://")):
        from deepclf.clients._grpc import GrpcClient

        return GrpcClient(url, **options)
    raise UsageError(
        f"server URL {url!r} has no known scheme; expected grpc://host:8500, grpcs://..., http://host:8501 "
        "or https://..."
    )


class RemotePredictor:
    """A client bound to one model: ``classify(images, top_k)`` and ``close()``, like a local ``Runner``."""

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        send: str = SEND_TENSOR,
    ) -> None:
        if not model:
            raise UsageError("a remote prediction needs the model name (--model NAME)")
        self.client = client
        self.model, self.version, self.label = model, version, label
        self.send = check_send(send)

    def classify(self, images: Sequence[Any], top_k: int = 5) -> list[Classification]:
        results: list[Classification] = self.client.classify(
            images, model=self.model, version=self.version, label=self.label, top_k=top_k, send=self.send
        )
        return results

    def close(self) -> None:
        self.client.close()
