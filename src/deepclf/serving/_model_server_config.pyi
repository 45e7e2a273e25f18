# Generated from serving/model_server_config.binpb by `make protos` (deepclf.protocol.build_protos.render_stub): do not edit.
# Type checking only: the classes are made at run time from the descriptor set, in a private pool; this file
# gives type checkers their fields. No module of this name exists at run time.

import builtins
import typing
from collections.abc import Iterable, Mapping

from google.protobuf.descriptor import Descriptor
from google.protobuf.internal.containers import (
    MessageMap,
    RepeatedCompositeFieldContainer,
    RepeatedScalarFieldContainer,
    ScalarMap,
)
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message


@typing.final
class Any(Message):
    DESCRIPTOR: Descriptor
    type_url: builtins.str
    value: builtins.bytes
    def __init__(self, *, type_url: builtins.str | None = ..., value: builtins.bytes | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["type_url", "value"]) -> None: ...

@typing.final
class FileSystemStoragePathSourceConfig(Message):
    DESCRIPTOR: Descriptor

    @typing.final
    class ServableVersionPolicy(Message):
        DESCRIPTOR: Descriptor

        @typing.final
        class Latest(Message):
            DESCRIPTOR: Descriptor
            num_versions: builtins.int
            def __init__(self, *, num_versions: builtins.int | None = ...) -> None: ...
            def ClearField(self, field_name: typing.Literal["num_versions"]) -> None: ...

        @typing.final
        class All(Message):
            DESCRIPTOR: Descriptor
            def __init__(self) -> None: ...

        @typing.final
        class Specific(Message):
            DESCRIPTOR: Descriptor
            @property
            def versions(self) -> RepeatedScalarFieldContainer[builtins.int]: ...
            def __init__(self, *, versions: Iterable[builtins.int] | None = ...) -> None: ...
            def ClearField(self, field_name: typing.Literal["versions"]) -> None: ...
        @property
        def latest(self) -> FileSystemStoragePathSourceConfig.ServableVersionPolicy.Latest: ...
        @property
        def all(self) -> FileSystemStoragePathSourceConfig.ServableVersionPolicy.All: ...
        @property
        def specific(self) -> FileSystemStoragePathSourceConfig.ServableVersionPolicy.Specific: ...
        def __init__(self, *, latest: FileSystemStoragePathSourceConfig.ServableVersionPolicy.Latest | None = ..., all: FileSystemStoragePathSourceConfig.ServableVersionPolicy.All | None = ..., specific: FileSystemStoragePathSourceConfig.ServableVersionPolicy.Specific | None = ...) -> None: ...
        def HasField(self, field_name: typing.Literal["latest", "all", "specific", "policy_choice"]) -> builtins.bool: ...
        def ClearField(self, field_name: typing.Literal["latest", "all", "specific", "policy_choice"]) -> None: ...
        def WhichOneof(self, oneof_group: typing.Literal["policy_choice"]) -> typing.Literal["latest", "all", "specific"] | None: ...

    @typing.final
    class ServableToMonitor(Message):
        DESCRIPTOR: Descriptor
        servable_name: builtins.str
        base_path: builtins.str
        @property
        def servable_version_policy(self) -> FileSystemStoragePathSourceConfig.ServableVersionPolicy: ...
        def __init__(self, *, servable_name: builtins.str | None = ..., base_path: builtins.str | None = ..., servable_version_policy: FileSystemStoragePathSourceConfig.ServableVersionPolicy | None = ...) -> None: ...
        def HasField(self, field_name: typing.Literal["servable_version_policy"]) -> builtins.bool: ...
        def ClearField(self, field_name: typing.Literal["servable_name", "base_path", "servable_version_policy"]) -> None: ...
    @property
    def servables(self) -> RepeatedCompositeFieldContainer[FileSystemStoragePathSourceConfig.ServableToMonitor]: ...
    file_system_poll_wait_seconds: builtins.int
    fail_if_zero_versions_at_startup: builtins.bool
    servable_versions_always_present: builtins.bool
    def __init__(self, *, servables: Iterable[FileSystemStoragePathSourceConfig.ServableToMonitor] | None = ..., file_system_poll_wait_seconds: builtins.int | None = ..., fail_if_zero_versions_at_startup: builtins.bool | None = ..., servable_versions_always_present: builtins.bool | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["servables", "file_system_poll_wait_seconds", "fail_if_zero_versions_at_startup", "servable_versions_always_present"]) -> None: ...

@typing.final
class LogCollectorConfig(Message):
    DESCRIPTOR: Descriptor
    type: builtins.str
    filename_prefix: builtins.str
    def __init__(self, *, type: builtins.str | None = ..., filename_prefix: builtins.str | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["type", "filename_prefix"]) -> None: ...

@typing.final
class PerTaskSamplingConfig(Message):
    DESCRIPTOR: Descriptor
    dc: builtins.str
    task_index: builtins.int
    sampling_rate: builtins.float
    def __init__(self, *, dc: builtins.str | None = ..., task_index: builtins.int | None = ..., sampling_rate: builtins.float | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["dc", "task_index", "sampling_rate"]) -> None: ...

@typing.final
class SamplingConfig(Message):
    DESCRIPTOR: Descriptor

    @typing.final
    class _Attributes(EnumTypeWrapper):
        ATTR_DEFAULT: builtins.int
        ATTR_REQUEST_ORIGIN: builtins.int
        ATTR_REQUEST_CRITICALITY: builtins.int
    Attributes: typing.ClassVar[SamplingConfig._Attributes]
    ATTR_DEFAULT: typing.ClassVar[builtins.int]
    ATTR_REQUEST_ORIGIN: typing.ClassVar[builtins.int]
    ATTR_REQUEST_CRITICALITY: typing.ClassVar[builtins.int]
    sampling_rate: builtins.float
    @property
    def per_task_sampling_configs(self) -> RepeatedCompositeFieldContainer[PerTaskSamplingConfig]: ...
    attributes: builtins.int
    def __init__(self, *, sampling_rate: builtins.float | None = ..., per_task_sampling_configs: Iterable[PerTaskSamplingConfig] | None = ..., attributes: builtins.int | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["sampling_rate", "per_task_sampling_configs", "attributes"]) -> None: ...

@typing.final
class LoggingConfig(Message):
    DESCRIPTOR: Descriptor
    @property
    def log_collector_config(self) -> LogCollectorConfig: ...
    @property
    def sampling_config(self) -> SamplingConfig: ...
    @property
    def custom_logging_config(self) -> Any: ...
    def __init__(self, *, log_collector_config: LogCollectorConfig | None = ..., sampling_config: SamplingConfig | None = ..., custom_logging_config: Any | None = ...) -> None: ...
    def HasField(self, field_name: typing.Literal["log_collector_config", "sampling_config", "custom_logging_config"]) -> builtins.bool: ...
    def ClearField(self, field_name: typing.Literal["log_collector_config", "sampling_config", "custom_logging_config"]) -> None: ...

@typing.final
class _ModelType(EnumTypeWrapper):
    MODEL_TYPE_UNSPECIFIED: builtins.int
    TENSORFLOW: builtins.int
    OTHER: builtins.int
ModelType: _ModelType

@typing.final
class ModelConfig(Message):
    DESCRIPTOR: Descriptor
    name: builtins.str
    base_path: builtins.str
    model_type: builtins.int
    model_platform: builtins.str
    @property
    def model_version_policy(self) -> FileSystemStoragePathSourceConfig.ServableVersionPolicy: ...
    @property
    def version_labels(self) -> ScalarMap[builtins.str, builtins.int]: ...
    @property
    def logging_config(self) -> LoggingConfig: ...
    def __init__(self, *, name: builtins.str | None = ..., base_path: builtins.str | None = ..., model_type: builtins.int | None = ..., model_platform: builtins.str | None = ..., model_version_policy: FileSystemStoragePathSourceConfig.ServableVersionPolicy | None = ..., version_labels: Mapping[builtins.str, builtins.int] | None = ..., logging_config: LoggingConfig | None = ...) -> None: ...
    def HasField(self, field_name: typing.Literal["model_version_policy", "logging_config"]) -> builtins.bool: ...
    def ClearField(self, field_name: typing.Literal["name", "base_path", "model_type", "model_platform", "model_version_policy", "version_labels", "logging_config"]) -> None: ...

@typing.final
class ModelConfigList(Message):
    DESCRIPTOR: Descriptor
    @property
    def config(self) -> RepeatedCompositeFieldContainer[ModelConfig]: ...
    def __init__(self, *, config: Iterable[ModelConfig] | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["config"]) -> None: ...

@typing.final
class ModelServerConfig(Message):
    DESCRIPTOR: Descriptor
    @property
    def model_config_list(self) -> ModelConfigList: ...
    @property
    def custom_model_config(self) -> Any: ...
    def __init__(self, *, model_config_list: ModelConfigList | None = ..., custom_model_config: Any | None = ...) -> None: ...
    def HasField(self, field_name: typing.Literal["model_config_list", "custom_model_config", "config"]) -> builtins.bool: ...
    def ClearField(self, field_name: typing.Literal["model_config_list", "custom_model_config", "config"]) -> None: ...
    def WhichOneof(self, oneof_group: typing.Literal["config"]) -> typing.Literal["model_config_list", "custom_model_config"] | None: ...

@typing.final
class ReloadConfigRequest(Message):
    DESCRIPTOR: Descriptor
    @property
    def config(self) -> ModelServerConfig: ...
    def __init__(self, *, config: ModelServerConfig | None = ...) -> None: ...
    def HasField(self, field_name: typing.Literal["config"]) -> builtins.bool: ...
    def ClearField(self, field_name: typing.Literal["config"]) -> None: ...

@typing.final
class StatusProto(Message):
    DESCRIPTOR: Descriptor
    error_code: builtins.int
    error_message: builtins.str
    def __init__(self, *, error_code: builtins.int | None = ..., error_message: builtins.str | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["error_code", "error_message"]) -> None: ...

@typing.final
class ReloadConfigResponse(Message):
    DESCRIPTOR: Descriptor
    @property
    def status(self) -> StatusProto: ...
    def __init__(self, *, status: StatusProto | None = ...) -> None: ...
    def HasField(self, field_name: typing.Literal["status"]) -> builtins.bool: ...
    def ClearField(self, field_name: typing.Literal["status"]) -> None: ...

@typing.final
class PrometheusConfig(Message):
    DESCRIPTOR: Descriptor
    enable: builtins.bool
    path: builtins.str
    def __init__(self, *, enable: builtins.bool | None = ..., path: builtins.str | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["enable", "path"]) -> None: ...

@typing.final
class MonitoringConfig(Message):
    DESCRIPTOR: Descriptor
    @property
    def prometheus_config(self) -> PrometheusConfig: ...
    def __init__(self, *, prometheus_config: PrometheusConfig | None = ...) -> None: ...
    def HasField(self, field_name: typing.Literal["prometheus_config"]) -> builtins.bool: ...
    def ClearField(self, field_name: typing.Literal["prometheus_config"]) -> None: ...

@typing.final
class SSLConfig(Message):
    DESCRIPTOR: Descriptor
    server_key: builtins.str
    server_cert: builtins.str
    custom_ca: builtins.str
    client_verify: builtins.bool
    def __init__(self, *, server_key: builtins.str | None = ..., server_cert: builtins.str | None = ..., custom_ca: builtins.str | None = ..., client_verify: builtins.bool | None = ...) -> None: ...
    def ClearField(self, field_name: typing.Literal["server_key", "server_cert", "custom_ca", "client_verify"]) -> None: ...
