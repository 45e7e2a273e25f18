"""gRPC plumbing shared by the edge server and the clients: method paths, classes and (de)serializers.

The table is read from the service descriptors in the private pool, so the paths are exactly TF Serving's
(``/tensorflow.serving.PredictionService/Predict``). No generated ``*_pb2_grpc`` modules are needed::

    # server (grpc or grpc.aio)
    server.add_generic_rpc_handlers([
        generic_handler(PREDICTION_SERVICE, {"Predict": predict, "GetModelMetadata": metadata}),
        generic_handler(MODEL_SERVICE, {"GetModelStatus": status}),
    ])

    # client (grpc or grpc.aio channel)
    predict = unary_unary(channel, PREDICT)
    response = predict(request, timeout=5.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from deepclf.protocol import messages

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


@dataclass(frozen=True)
class Method:
    """One unary RPC: its service, name, full path and message classes (``FromString`` / ``SerializeToString``)."""

    service: str
    name: str
    request_class: type[Message]
    response_class: type[Message]

    @property
    def path(self) -> str:
        """The full method path gRPC puts on the wire: ``/<package.Service>/<Method>``."""
        return f"/{self.service}/{self.name}"


def _methods() -> dict[str, Method]:
    table: dict[str, Method] = {}
    for service in (PREDICTION_SERVICE, MODEL_SERVICE):
        sd = messages.POOL.FindServiceByName(service)
        for md in sd.methods:
            method = Method(
                service=service,
                name=md.name,
                request_class=messages.message_class(md.input_type.full_name),
                response_class=messages.message_class(md.output_type.full_name),
            )
            table[method.path] = method
    return table


#: Every method of PredictionService and ModelService, keyed by full path.
METHODS: Mapping[str, Method] = _methods()

PREDICT = METHODS[f"/{PREDICTION_SERVICE}/Predict"]
GET_MODEL_METADATA = METHODS[f"/{PREDICTION_SERVICE}/GetModelMetadata"]
CLASSIFY = METHODS[f"/{PREDICTION_SERVICE}/Classify"]
REGRESS = METHODS[f"/{PREDICTION_SERVICE}/Regress"]
MULTI_INFERENCE = METHODS[f"/{PREDICTION_SERVICE}/MultiInference"]
GET_MODEL_STATUS = METHODS[f"/{MODEL_SERVICE}/GetModelStatus"]


def method(service: str, name: str) -> Method:
    """Look a method up by service and name; the error lists what exists."""
    path = f"/{service}/{name}"
    try:
        return METHODS[path]
    except KeyError:
        raise KeyError(f"no gRPC method {path!r}; known: {sorted(METHODS)}") from None


def generic_handler(service: str, behaviours: Mapping[str, Callable[..., Any]], *, raw_requests: bool = False) -> Any:
    """A ``grpc.GenericRpcHandler`` serving ``behaviours`` (method name -> ``fn(request, context)``).

    Works with ``grpc.server`` (plain functions) and ``grpc.aio.server`` (coroutine functions) alike; methods
    left out answer UNIMPLEMENTED, as gRPC does for unknown methods. ``raw_requests``: ``fn`` gets the request's
    bytes and parses them itself (``method(service, name).request_class``), so that a message protobuf refuses
    (invalid UTF-8 in a string field, truncated bytes) can be answered INVALID_ARGUMENT instead of gRPC's
    INTERNAL "Exception deserializing request!".
    """
    import grpc  # keep `import deepclf.protocol` light for REST-only users

    handlers = {}
    for name, fn in behaviours.items():
        m = method(service, name)
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=None if raw_requests else m.request_class.FromString,
            response_serializer=m.response_class.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service, handlers)


def unary_unary(channel: Any, m: Method | str) -> Any:
    """A callable for one method on a ``grpc.Channel`` or ``grpc.aio.Channel`` (``m``: a Method or its path)."""
    if isinstance(m, str):
        if m not in METHODS:
            raise KeyError(f"no gRPC method {m!r}; known: {sorted(METHODS)}")
        m = METHODS[m]
    return channel.unary_unary(
        m.path,
        request_serializer=m.request_class.SerializeToString,
        response_deserializer=m.response_class.FromString,
    )
