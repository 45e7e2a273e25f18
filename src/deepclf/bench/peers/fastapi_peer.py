"""A hand-written FastAPI + uvicorn peer: TF Serving's REST predict route over the same LiteRT interpreter.

What a developer writes in a few lines from FastAPI's and TF Serving's docs: ``POST /v1/models/<name>:predict``
reads the body with ``await request.json()``, turns ``instances`` into a numpy array, runs the interpreter and
returns ``{"predictions": [...]}`` (FastAPI's default JSON response). ``GET /v1/models/<name>`` answers
``{"name": ..., "ready": true}`` for readiness checks. uvicorn runs with its defaults (one worker, access log)
except the port.

Usage (``pip install '.[peers]'``; see ``deepclf.bench.peers``)::

    python -m deepclf.bench.peers.fastapi_peer --model-file models/flowers/1/model.tflite --name flowers \\
        --port 8000 --threads 2
"""

# No ``from __future__ import annotations`` here: FastAPI reads the handlers' annotations to inject the request,
# and postponed (string) annotations would name ``Request``, which is imported inside ``build_app`` only.
import argparse
from typing import Any

from deepclf.bench.peers._litert import PeerModel, rows_to_array


def build_app(model: PeerModel, name: str) -> Any:
    """The FastAPI application (typed ``Any``: FastAPI is an optional dependency of the peers only)."""
    from fastapi import FastAPI, HTTPException, Request

    app = FastAPI()

    @app.get(f"/v1/models/{name}")
    async def status() -> dict[str, Any]:
        return {"name": name, "ready": True}

    # An async handler running the interpreter inline: the straightforward FastAPI way to read the body with
    # `await request.json()`, and it keeps the one (not thread-safe) interpreter on the event loop's thread.
    @app.post(f"/v1/models/{name}:predict")
    async def predict(request: Request) -> dict[str, Any]:
        body = await request.json()
        try:
            x = rows_to_array(body["instances"])
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return {"predictions": model.predict(x).tolist()}

    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-file", required=True, help="the .tflite file to serve")
    p.add_argument("--name", default="flowers", help="model name in the URL (default flowers)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000, uvicorn's)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, uvicorn's)")
    p.add_argument("--threads", type=int, default=2, help="LiteRT interpreter threads (default 2)")
    args = p.parse_args(argv)
    import uvicorn

    uvicorn.run(build_app(PeerModel(args.model_file, threads=args.threads), args.name), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
