"""``PeerTarget``: a TF Serving REST endpoint measured without its metadata API (peers have none).

``RestClient`` asks ``GET /v1/models/<name>/metadata`` for the input size and to name a single unnamed output;
KServe and the FastAPI peer serve no such route. ``PeerTarget`` is given the input size instead and sends the
same bytes ``RestClient`` sends (``deepclf.protocol.rest``: TF Serving's row format, orjson) over the same HTTP
client (``httpx.Client``, one per thread, keep-alive). The peers scenario measures our server through it too, so
the three servers see identical requests and identical client work::

    t = PeerTarget("kserve", "http://127.0.0.1:8080", "flowers", input_size=(180, 180))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepclf.bench.remote_targets import RemoteTarget
from deepclf.bench.targets import Batch
from deepclf.manifest import INPUT_FLOAT, OUTPUT_PROBABILITIES, SIGNATURE_FLOAT
from deepclf.protocol import rest


class RowRestClient:
    """``RestClient``'s predict without metadata: encode rows, POST, decode ``predictions`` as probabilities."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        import httpx  # edge extra

        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def predict(self, x: np.ndarray, *, model: str) -> np.ndarray:
        body = rest.encode_predict_request({INPUT_FLOAT: x}, signature_name=SIGNATURE_FLOAT, format=rest.ROW)
        r = self._http.post(f"/v1/models/{model}:predict", content=body, headers={"Content-Type": "application/json"})
        if r.status_code != 200:
            raise rest.decode_error(r.status_code, r.content)
        # A single unnamed output (the peers' [[...]]) is the probabilities; our server names its two outputs.
        out = rest.decode_predict_response(r.content, output_names=[OUTPUT_PROBABILITIES])
        return np.asarray(out[OUTPUT_PROBABILITIES], dtype=np.float32)

    def close(self) -> None:
        self._http.close()


class PeerTarget(RemoteTarget):
    """A REST row-format endpoint at ``url`` serving ``model``, with a known ``input_size`` (height, width)."""

    def __init__(self, name: str, url: str, model: str, *, input_size: tuple[int, int], timeout: float = 30.0) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        super().__init__(f"{url}/v1/models/{model}", "rest", host, int(port), model, timeout=timeout, name=name)
        self.input_size = input_size
        self.metrics_url = None  # the peers export no TF Serving-style Prometheus endpoint; compare client side

    def _make_client(self) -> Any:
        return RowRestClient(self.base_url, timeout=self.timeout)

    def _open(self) -> None:
        client = self._make_client()
        self._local.obj = client
        self._clients = [client]

    def _predict(self, batch: Batch) -> np.ndarray:
        client: RowRestClient = self._per_thread(self._make_client)
        return client.predict(batch.tensor, model=self.model)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "format": "remote", "client": "deepclf.protocol.rest row format + httpx"}
