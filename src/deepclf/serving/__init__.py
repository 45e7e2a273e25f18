"""The edge server: TF Serving's REST and gRPC APIs over LiteRT, without TensorFlow (``deepclf serve``).

::

    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(model_name="flowers", model_base_path="models/flowers", port=0, rest_api_port=0)
    with EdgeServer(cfg) as srv:
        print(srv.rest_url, srv.grpc_target)     # http://127.0.0.1:54321 127.0.0.1:54322

Importing this package imports neither TensorFlow nor the server stack (uvicorn, grpc load on ``start``).
TF Serving deployment files (docker-compose, models.config, Kubernetes) are written by ``deepclf.deploy.tfserving``.
"""

from deepclf.serving.config import SERVE_FORMATS, ModelConfig, ServerConfig
from deepclf.serving.server import EdgeServer, load_version

__all__ = ["SERVE_FORMATS", "EdgeServer", "ModelConfig", "ServerConfig", "load_version"]
