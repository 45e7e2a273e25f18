"""A KServe peer: KServe's ``ModelServer`` with a custom ``kserve.Model`` running a ``.tflite`` file on LiteRT.

It speaks KServe's V1 protocol, which is TF Serving's REST predict API (``POST /v1/models/<name>:predict`` with
``{"instances": [...]}``, answered with ``{"predictions": [...]}``), so the same client measures it and our server.
Written the way KServe's custom-model docs show: KServe parses the request (its own JSON decoding and V1
validation), ``predict`` turns the rows into a numpy array, runs the interpreter and returns plain lists. Server
flags are KServe's defaults (one uvicorn worker, its access and latency logging) except the ports; its gRPC
server is off because nothing here calls it, and it would need a second free port.

Usage (from a virtual environment with ``pip install '.[peers]'``; see ``deepclf.bench.peers``)::

    python -m deepclf.bench.peers.kserve_peer --model-file models/flowers/1/model.tflite --name flowers \\
        --port 8080 --threads 2
    curl -s localhost:8080/v1/models/flowers    # {"name": "flowers", "ready": true}
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deepclf.bench.peers._litert import PeerModel, rows_to_array


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-file", required=True, help="the .tflite file to serve")
    p.add_argument("--name", default="flowers", help="model name in the URL (default flowers)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080, KServe's)")
    p.add_argument("--threads", type=int, default=2, help="LiteRT interpreter threads (default 2)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # kserve.model_server parses sys.argv for its own flags when it is imported; ours are not its flags.
    sys.argv = sys.argv[:1]
    import kserve

    class TFLiteModel(kserve.Model):
        """The model of KServe's custom-model example, with a LiteRT interpreter in place of a PyTorch one."""

        def __init__(self, name: str, model_file: str, threads: int) -> None:
            super().__init__(name)
            self.model_file, self.threads = model_file, threads
            self.model: PeerModel | None = None
            self.load()

        def load(self) -> bool:
            self.model = PeerModel(self.model_file, threads=self.threads)
            self.ready = True
            return bool(self.ready)

        # A plain (sync) predict, as in KServe's examples: KServe calls it on its event loop, so the single
        # interpreter is never used from two threads at once.
        def predict(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
            assert self.model is not None
            probs = self.model.predict(rows_to_array(payload["instances"]))
            return {"predictions": probs.tolist()}

    model = TFLiteModel(args.name, args.model_file, args.threads)
    kserve.ModelServer(http_port=args.port, enable_grpc=False).start([model])


if __name__ == "__main__":
    main()
