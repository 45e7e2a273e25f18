"""Targets behind a server: ``RemoteTarget`` calls our edge server or TF Serving over REST or gRPC through
``deepclf.clients`` (one client per thread, no retries), or through ``_StdlibRestClient``, a hand-written
httpx + stdlib ``json`` baseline (``codec=stdlib``)::

    t = RemoteTarget("grpc://localhost:8500/flowers", "grpc", "localhost", 8500, "flowers", send="bytes")
    t.metrics_url       # http://localhost:8501/monitoring/prometheus/metrics: gRPC on 8500 -> REST port 8501
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from deepclf.bench.targets import Batch, Target
from deepclf.manifest import INPUT_BYTES, INPUT_FLOAT, OUTPUT_PROBABILITIES, SIGNATURE_BYTES, SIGNATURE_FLOAT

METRICS_PATH = "/monitoring/prometheus/metrics"


class RemoteTarget(Target):
    """A model served over REST or gRPC (our edge server or TF Serving), called through ``deepclf.clients``."""

    kind = "served"

    def __init__(
        self,
        spec: str,
        transport: str,
        host: str,
        port: int,
        model: str,
        *,
        send: str = "tensor",
        version: int | None = None,
        label: str | None = None,
        codec: str = "deepclf",
        timeout: float = 30.0,
        metrics_url: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(spec, name)
        self.transport = transport
        self.host, self.port, self.model = host, port, model
        self.send = send
        self.version, self.label = version, label
        self.codec = codec
        self.timeout = timeout
        if metrics_url is None:
            rest_port = port if transport == "rest" else (8501 if port == 8500 else None)
            metrics_url = f"http://{host}:{rest_port}{METRICS_PATH}" if rest_port else None
        self.metrics_url = metrics_url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}" if self.transport == "rest" else f"{self.host}:{self.port}"

    def _make_client(self) -> Any:
        if self.transport == "rest" and self.codec == "stdlib":
            return _StdlibRestClient(self.base_url, timeout=self.timeout)
        from deepclf import clients  # lazy: a REST-only run never imports grpc

        cls = clients.RestClient if self.transport == "rest" else clients.GrpcClient
        # No retries: a benchmark counts a failed request as an error instead of hiding it in a slower one.
        return cls(self.base_url, timeout=self.timeout, retry=clients.NO_RETRIES)

    def _open(self) -> None:
        client = self._make_client()
        self._local.obj = client
        self._clients = [client]
        # The model's metadata says which size to preprocess for (and proves the server is up and has the model).
        if hasattr(client, "metadata"):
            kw: dict[str, Any] = {"version": self.version, "label": self.label}
            md = client.metadata(self.model, **{k: v for k, v in kw.items() if v is not None})
            self.input_size = md.input_size()

    def _close(self) -> None:
        # Worker threads' own clients go with their thread-local storage; close the ones we can reach.
        for c in getattr(self, "_clients", []):
            close = getattr(c, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):  # closing must not mask results
                    close()
        self._clients = []
        self._local = threading.local()

    def _predict(self, batch: Batch) -> np.ndarray:
        client = self._per_thread(self._make_client)
        kw: dict[str, Any] = {"model": self.model}
        if self.version is not None:
            kw["version"] = self.version
        if self.label is not None:
            kw["label"] = self.label
        if self.send == "bytes":
            out = client.predict(
                {INPUT_BYTES: np.asarray(batch.encoded, dtype=object)}, signature=SIGNATURE_BYTES, **kw
            )
        else:
            out = client.predict({INPUT_FLOAT: batch.tensor}, signature=SIGNATURE_FLOAT, **kw)
        return np.asarray(out[OUTPUT_PROBABILITIES])

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "format": "remote",
            "transport": self.transport,
            "url": self.base_url,
            "model": self.model,
            "version": self.version,
            "codec": self.codec if self.transport == "rest" else "protobuf",
            "metrics_url": self.metrics_url,
        }


class _StdlibRestClient:
    """What a user writes by hand from TF Serving's REST docs: an HTTP client + stdlib ``json``, row format.

    A baseline for pricing our codec (``deepclf.protocol``, orjson); deliberately not optimised. Its HTTP client
    is ``RestClient``'s (``httpx.Client``), so the comparison prices the codec alone.
    """

    def __init__(self, base_url: str, *, timeout: float) -> None:
        import httpx  # edge extra

        self._session = httpx.Client()
        self._base = base_url
        self._timeout = timeout

    def predict(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = SIGNATURE_FLOAT,
    ) -> dict[str, np.ndarray]:
        ((key, value),) = inputs.items()
        if value.dtype == object:  # binary strings travel as {"b64": ...} in TF Serving's JSON
            instances: list[Any] = [{key: {"b64": base64.b64encode(v).decode("ascii")}} for v in value]
        else:
            instances = [{key: row} for row in value.tolist()]
        path = f"/v1/models/{model}"
        if version is not None:
            path += f"/versions/{version}"
        elif label is not None:
            path += f"/labels/{label}"
        body = json.dumps({"signature_name": signature, "instances": instances})
        r = self._session.post(
            self._base + path + ":predict",
            content=body,
            timeout=self._timeout,
            headers={"Content-Type": "application/json"},
        )
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code} from {path}:predict: {r.text[:200]}")
        preds = json.loads(r.text)["predictions"]
        if preds and isinstance(preds[0], dict):
            return {k: np.asarray([p[k] for p in preds]) for k in preds[0]}
        return {OUTPUT_PROBABILITIES: np.asarray(preds, dtype=np.float32)}

    def close(self) -> None:
        self._session.close()
