"""TF Serving's ``models.config`` (``--model_config_file``) without TensorFlow Serving's Python package.

``protos/`` holds the subset of ``tensorflow_serving/config/*.proto`` that the file uses (same package, names
and field numbers as upstream); it is compiled into ``model_server_config.binpb`` at development time and loaded
into a *private* descriptor pool here (never the default pool, where ``tensorflow_serving`` may register the same
names). The text is parsed with ``google.protobuf.text_format``, so anything TF Serving accepts parses here::

    model_config_list {
      config { name: "flowers" base_path: "/models/flowers" model_platform: "tensorflow"
               model_version_policy { specific { versions: 1 versions: 2 } }
               version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } }
    }

    load_model_config_file("models.config")   # -> [ModelConfig(name='flowers', policy='specific', ...)]

The same pool holds ``tensorflow.serving.SSLConfig`` (``--ssl_config_file``, read by ``deepclf.serving.tls``),
``tensorflow.serving.MonitoringConfig`` (``--monitoring_config_file``, ``prometheus_metrics_path``) and
``tensorflow.serving.BatchingParameters`` (``--batching_parameters_file``, ``deepclf.serving.batching``).

Validated as TF Serving validates them (model_servers/server_core.cc): a model's platform must be
``"tensorflow"`` (``model_platform``, or the deprecated ``model_type: TENSORFLOW``), the only one of
``tensorflow_model_server``; a relative ``base_path`` (which TF Serving refuses) is taken from the working
directory, with a warning.

Recompile after editing a .proto: ``python -m deepclf.serving.modelconfig --build``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message

from deepclf.errors import UsageError
from deepclf.serving.modelspec import ModelConfig

if TYPE_CHECKING:
    # The classes' fields, for type checkers: a stub generated from the same descriptor set (build()).
    from deepclf.serving._model_server_config import (
        BatchingParameters,
        ModelServerConfig,
        MonitoringConfig,
        SSLConfig,
    )

_M = TypeVar("_M", bound=Message)
log = logging.getLogger("deepclf.serving")

DESCRIPTOR_SET_NAME = "model_server_config.binpb"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's kPrometheusPath
PROTO_ROOT = Path(__file__).resolve().parent / "protos"


@functools.lru_cache(maxsize=1)
def _pool() -> descriptor_pool.DescriptorPool:
    data = resources.files("deepclf.serving").joinpath(DESCRIPTOR_SET_NAME).read_bytes()
    pool = descriptor_pool.DescriptorPool()
    for fd in descriptor_pb2.FileDescriptorSet.FromString(data).file:  # dependencies come first
        pool.Add(fd)
    return pool


def model_server_config_class() -> type[ModelServerConfig]:
    """The private-pool class of ``tensorflow.serving.ModelServerConfig``."""
    cls = message_factory.GetMessageClass(_pool().FindMessageTypeByName("tensorflow.serving.ModelServerConfig"))
    return cast("type[ModelServerConfig]", cls)  # the class of that descriptor, which the stub types


def ssl_config_class() -> type[SSLConfig]:
    """The private-pool class of ``tensorflow.serving.SSLConfig`` (``--ssl_config_file``)."""
    cls = message_factory.GetMessageClass(_pool().FindMessageTypeByName("tensorflow.serving.SSLConfig"))
    return cast("type[SSLConfig]", cls)  # the class of that descriptor, which the stub types


def monitoring_config_class() -> type[MonitoringConfig]:
    """The private-pool class of ``tensorflow.serving.MonitoringConfig`` (``--monitoring_config_file``)."""
    cls = message_factory.GetMessageClass(_pool().FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))
    return cast("type[MonitoringConfig]", cls)  # the class of that descriptor, which the stub types


def batching_parameters_class() -> type[BatchingParameters]:
    """The private-pool class of ``tensorflow.serving.BatchingParameters`` (``--batching_parameters_file``)."""
    cls = message_factory.GetMessageClass(_pool().FindMessageTypeByName("tensorflow.serving.BatchingParameters"))
    return cast("type[BatchingParameters]", cls)  # the class of that descriptor, which the stub types


def prometheus_metrics_path(path: str | os.PathLike[str] | None) -> str | None:
    """Where the REST port serves Prometheus metrics for a ``--monitoring_config_file``: its
    ``prometheus_config.path`` (default ``/monitoring/prometheus/metrics``) when ``enable: true``, ``None`` (no
    endpoint) when not, as TF Serving (spec §5.10). Without a file (``None``) deepclf serves the default path."""
    if path is None:
        return PROMETHEUS_PATH
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --monitoring_config_file {p}: {exc.strerror or exc}") from None
    msg = parse_text_proto(
        monitoring_config_class(), text, source=str(p), what="TF Serving MonitoringConfig (text format)"
    )
    if not msg.prometheus_config.enable:
        return None
    url = msg.prometheus_config.path or PROMETHEUS_PATH
    if not url.startswith("/"):
        raise UsageError(f"--monitoring_config_file {p}: prometheus_config.path must start with '/', got {url!r}")
    return url


def private_message_class(full_name: str) -> type[Message]:
    """Any class of the private pool by full name (``tensorflow.serving.ReloadConfigRequest``, ...)."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


def parse_text_proto(cls: type[_M], text: str, *, source: str, what: str) -> _M:
    """Parse text-format ``text`` into a new ``cls`` (a private-pool class); a syntax error is a ``UsageError``
    that names ``source``, ``what`` was expected, and the line."""
    msg = cls()
    try:
        text_format.Parse(text, msg, descriptor_pool=_pool())
    except text_format.ParseError as exc:
        raise UsageError(f"{source}: not a valid {what}: {exc}") from None
    return msg


def parse_model_server_config(text: str, *, source: str = "<text>") -> ModelServerConfig:
    """Parse a ``models.config`` text into a ``ModelServerConfig`` message; syntax errors name the line."""
    return parse_text_proto(
        model_server_config_class(), text, source=source, what="TF Serving model config (ModelServerConfig text format)"
    )


#: ``tensorflow_model_server``'s only platform (model_platform_types.h ``kTensorFlowModelPlatform``); TF Serving
#: serves SavedModels and, with ``--prefer_tflite_model``, TFLite files under it.
TENSORFLOW_PLATFORM = "tensorflow"
_MODEL_TYPE_TENSORFLOW = 1  # the deprecated ModelType enum's TENSORFLOW


def check_platform(config: Any) -> None:
    """TF Serving's platform rules for one ``ModelConfig`` message (server_core.cc ``GetPlatform`` and the router):
    ``model_platform: "tensorflow"`` or the deprecated ``model_type: TENSORFLOW``, not both; anything else is
    refused in TF Serving's words (INVALID_ARGUMENT there, a usage error here), with what to write instead."""
    name, platform, model_type = config.name, config.model_platform, int(config.model_type)
    fix = f'; write model_platform: "{TENSORFLOW_PLATFORM}" (TF Serving\'s only platform, which serves TFLite too)'
    if model_type != 0:
        if platform:
            raise UsageError(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {name}{fix}"
            )
        if model_type != _MODEL_TYPE_TENSORFLOW:
            raise UsageError(f"ModelServerConfig::model_type choice {model_type} not supported.{fix[1:]}")
        log.warning("model %r: deprecated ModelServerConfig::model_type used; prefer model_platform", name)
        return
    if not platform:
        raise UsageError(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {name}{fix}"
        )
    if platform != TENSORFLOW_PLATFORM:
        raise UsageError(f"Model {name} requests unsupported platform {platform}{fix}")


def model_configs_from_message(msg: ModelServerConfig, *, source: str = "the model config") -> list[ModelConfig]:
    """The ``ModelConfig`` list a ``ModelServerConfig`` describes, validated as TF Serving validates it (platform);
    a relative base path is taken from the working directory, with a warning (TF Serving refuses it)."""
    if msg.WhichOneof("config") != "model_config_list":
        raise UsageError("the model config has no model_config_list (custom_model_config is not supported)")
    out: list[ModelConfig] = []
    for i, c in enumerate(msg.model_config_list.config):
        if not c.name or not c.base_path:
            raise UsageError(
                f"config #{i + 1} needs both name and base_path, got name={c.name!r} base_path={c.base_path!r}"
            )
        check_platform(c)
        base = Path(c.base_path)
        if not base.is_absolute():
            base = Path.cwd() / base
            log.warning(
                "%s: model %r: relative base_path %r taken from the working directory (%s); TF Serving refuses it "
                '("Expected model %s to have an absolute path or URI; got base_path()=%s"): write an absolute path '
                "for a config that tensorflow_model_server reads too",
                source,
                c.name,
                c.base_path,
                base,
                c.name,
                c.base_path,
            )
        vp = c.model_version_policy
        choice = vp.WhichOneof("policy_choice")
        kwargs: dict[str, Any] = {}
        if choice == "all":
            kwargs["policy"] = "all"
        elif choice == "specific":
            kwargs["policy"] = "specific"
            kwargs["versions"] = tuple(int(v) for v in vp.specific.versions)
        elif choice == "latest":
            kwargs["num_versions"] = int(vp.latest.num_versions) or 1
        out.append(
            ModelConfig(
                name=c.name,
                base_path=str(base),
                version_labels={k: int(v) for k, v in c.version_labels.items()},
                **kwargs,
            )
        )
    if not out:
        raise UsageError("the model config lists no models (model_config_list has no config entries)")
    return out


def load_model_config_file(path: str | os.PathLike[str]) -> list[ModelConfig]:
    """Read and parse a ``models.config`` file; relative base paths are taken from the working directory."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --model_config_file {p}: {exc.strerror or exc}") from None
    return model_configs_from_message(parse_model_server_config(text, source=str(p)), source=str(p))


def build(out: Path | None = None) -> Path:
    """Recompile ``protos/`` into the committed descriptor set, and its type stub ``_<stem>.pyi`` beside it
    (development time; needs grpcio-tools)."""
    from deepclf.fsutil import atomic_write_bytes, atomic_write_text
    from deepclf.protocol.build_protos import compile_descriptor_set, stub_for, stub_path

    committed = Path(__file__).resolve().parent / DESCRIPTOR_SET_NAME
    target = out or committed
    data = compile_descriptor_set(PROTO_ROOT)
    atomic_write_text(stub_path(target), stub_for(committed, data))
    return atomic_write_bytes(target, data)


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(description="Recompile the models.config proto subset")
    parser.add_argument("--build", action="store_true", required=True)
    parser.parse_args()
    print(f"wrote {build()}")
