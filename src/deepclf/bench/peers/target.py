"""``PeerTarget``: a TF Serving REST endpoint measured without its metadata API (peers have none).

``RestClient`` asks ``GET /v1/models/<name>/metadata`` for the input size and to name a single unnamed output;
KServe and the FastAPI peer serve no such route. ``PeerTarget`` is given the input size instead and sends the
same bytes ``RestClient`` sends (``deepclf.protocol.rest``: TF Serving's row format, orjson), each body encoded
once per image and then replayed, over the standard library's ``http.client`` (one kept-alive connection per
thread): like an external load generator (``hey -D body.json``), the client's own work per request is small and
the same for every server, so what differs between the servers is the servers. The peers scenario measures our
server through it too, so the three servers see identical requests and identical client work::

    t = PeerTarget("kserve", "http://127.0.0.1:8080", "flowers", input_size=(180, 180))
"""

from __future__ import annotations

import http.client
from typing import Any

import numpy as np

from deepclf.bench.remote_targets import RemoteTarget
from deepclf.bench.targets import Batch
from deepclf.manifest import INPUT_BYTES, INPUT_FLOAT, OUTPUT_PROBABILITIES, SIGNATURE_BYTES, SIGNATURE_FLOAT
from deepclf.protocol import rest

_HEADERS = {"Content-Type": "application/json"}


class RowRestClient:
    """``RestClient``'s predict without metadata: POST a row-format body, decode ``predictions`` as probabilities."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self._conn = http.client.HTTPConnection(host, port, timeout=timeout)

    @staticmethod
    def body(batch: Batch, send: str = "tensor") -> bytes:
        """The row-format request body of ``batch`` (what ``RestClient`` sends): its float32 pixels, or with
        ``send="bytes"`` its encoded images as ``{"b64": ...}`` to the image-bytes signature (deepclf models)."""
        if send == "bytes":
            images = np.asarray(batch.encoded, dtype=object)
            return rest.encode_predict_request({INPUT_BYTES: images}, signature_name=SIGNATURE_BYTES, format=rest.ROW)
        return rest.encode_predict_request({INPUT_FLOAT: batch.tensor}, signature_name=SIGNATURE_FLOAT, format=rest.ROW)

    def predict(self, body: bytes, *, model: str) -> np.ndarray:
        try:
            self._conn.request("POST", f"/v1/models/{model}:predict", body, _HEADERS)
            r = self._conn.getresponse()
            content = r.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()  # the next call reconnects; this one is counted as an error
            raise
        if r.status != 200:
            raise rest.decode_error(r.status, content)
        # A single unnamed output (the peers' [[...]]) is the probabilities; our server names its two outputs.
        out = rest.decode_predict_response(content, output_names=[OUTPUT_PROBABILITIES])
        return np.asarray(out[OUTPUT_PROBABILITIES], dtype=np.float32)

    def close(self) -> None:
        self._conn.close()


class PeerTarget(RemoteTarget):
    """A REST row-format endpoint at ``url`` serving ``model``, with a known ``input_size`` (height, width; ``None``:
    the latency run's size).
    ``send="bytes"``: the encoded images to the image-bytes signature (our server only; the peers have none)."""

    def __init__(
        self,
        name: str,
        url: str,
        model: str,
        *,
        input_size: tuple[int, int] | None,
        timeout: float = 30.0,
        send: str = "tensor",
    ) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        super().__init__(
            f"{url}/v1/models/{model}", "rest", host, int(port), model, timeout=timeout, name=name, send=send
        )
        self.input_size = input_size
        self.metrics_url = None  # the peers export no TF Serving-style Prometheus endpoint; compare client side
        #: Request bodies by the encoded images they hold (a run cycles through a few sample images).
        self._bodies: dict[tuple[bytes, ...], bytes] = {}

    def _make_client(self) -> Any:
        return RowRestClient(self.host, self.port, timeout=self.timeout)

    def _open(self) -> None:
        client = self._make_client()
        self._local.obj = client
        self._clients = [client]

    def _predict(self, batch: Batch) -> np.ndarray:
        client: RowRestClient = self._per_thread(self._make_client)
        body = self._bodies.get(batch.encoded) if batch.encoded else None
        if body is None:
            body = RowRestClient.body(batch, self.send)
            if batch.encoded:
                self._bodies[batch.encoded] = body  # threads may race to fill it: same bytes either way
        return client.predict(body, model=self.model)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "format": "remote",
            "client": "deepclf.protocol.rest row format, encoded once per image, http.client (keep-alive)",
        }


class PeerServerTarget(PeerTarget):
    """A peer server (``kind``: ``kserve`` or ``fastapi``) started on ``open()`` on a model's fp32 ``.tflite``,
    measured like ``PeerTarget``, and stopped on ``close()``: what ``deepclf bench latency kserve:DIR`` runs.

    ``path``: a converted version folder (its fp32 file and manifest) or a ``.tflite`` file. Opening raises
    ``PeerUnavailable`` (one line: which packages, which Python) when the peer's packages are missing, which the
    latency run reports as a failed target.
    """

    def __init__(
        self,
        spec: str,
        kind: str,
        path: str,
        *,
        threads: int = 2,
        python: str | None = None,
        name: str | None = None,
        send: str = "tensor",
    ) -> None:
        # The port is known once launched, the input size once the manifest is read (else the run's size).
        super().__init__(name or kind, "http://127.0.0.1:0", "flowers", input_size=None, send=send)
        self.spec, self.peer, self.path = spec, kind, path
        self.threads, self.python = threads, python
        self._stop: Any = None

    def _open(self) -> None:
        from pathlib import Path

        from deepclf.bench.peers.launch import launch
        from deepclf.manifest import Manifest
        from deepclf.variants import TFLITE_FILES

        p = Path(self.path)
        model_file = p if p.suffix == ".tflite" else p / TFLITE_FILES["fp32"]
        try:
            h, w, _ = Manifest.load(p).input.shape
            self.input_size = (h, w)
        except Exception:  # noqa: BLE001 - a bare .tflite has no manifest: the run's --size decides
            self.input_size = None
        url, self._stop = launch(self.peer, model_file, self.model, self.threads, python=self.python)
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        self.host, self.port = host, int(port)
        super()._open()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            if self._stop is not None:
                self._stop()
                self._stop = None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "peer": self.peer, "path": self.path, "threads": self.threads}
