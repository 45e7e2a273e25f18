"""Peer servers for the benchmarks: the same ``.tflite`` served by other frameworks over TF Serving's REST API.

* ``kserve``   KServe's ``ModelServer`` with a custom ``kserve.Model`` (``kserve_peer``; V1 protocol)
* ``fastapi``  a hand-written FastAPI + uvicorn app (``fastapi_peer``)

Both run the model with ``ai_edge_litert`` (2 interpreter threads by default), accept
``POST /v1/models/<name>:predict`` with ``{"instances": [...]}`` and answer ``{"predictions": [[...]]}``, so the
bench measures them with the same client as our server (``deepclf.bench.peers.target.PeerTarget``)::

    from deepclf.bench.peers import launch, skip_reason
    if (why := skip_reason("kserve")) is None:
        url, stop = launch("kserve", "models/flowers/1/model.tflite", "flowers", threads=2)
        ...
        stop()

Install (KServe cannot share deepclf's virtual environment: it pins ``protobuf<7``)::

    make peers-venv        # python3 -m venv .venv-peers && .venv-peers/bin/pip install -e '.[peers]'

Only the standard library is imported here; the peers' own modules import their frameworks when run.
"""

from __future__ import annotations

from deepclf.bench.peers.launch import PEERS, PeerUnavailable, launch, missing_modules, peer_python, skip_reason

__all__ = ["PEERS", "PeerUnavailable", "launch", "missing_modules", "peer_python", "skip_reason"]
