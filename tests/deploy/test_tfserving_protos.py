"""The generated TF Serving config files parse with TF Serving's own protos (google.protobuf.text_format).

* ``models.config``: ``ModelServerConfig`` from the pip package ``tensorflow-serving-api``
  (``tensorflow_serving.config.model_server_config_pb2``; importing it does not import TensorFlow).
* ``batching_parameters.txt`` and ``monitoring.config``: ``tensorflow-serving-api`` 2.21 ships neither
  ``session_bundle_config_pb2`` (where ``BatchingParameters`` lives) nor ``monitoring_config_pb2``. So this file
  carries the two messages as TF Serving declares them (same package, names, field numbers and types as
  tensorflow_serving/servables/tensorflow/session_bundle_config.proto and tensorflow_serving/config/
  monitoring_config.proto; ``BatchingParameters`` without its sibling message ``SessionBundleConfig``, whose
  TensorFlow imports it does not need), compiles them with grpcio-tools' protoc at test time into a private
  descriptor pool, and parses with those. Text format rejects unknown field names and wrong value types, which is
  what the server does when it reads the files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from deepclf.deploy.tfserving import TFServingOptions, render_bundle, scan_models, version_labels
from deepclf.deploy.tfserving.options import served_versions
from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
example = load_script("deployment/regenerate_example.py")
make_tree = example.make_fake_models_tree

BATCHING_PROTO = """
syntax = "proto3";
package tensorflow.serving;
import "google/protobuf/wrappers.proto";

message BatchingParameters {
  google.protobuf.Int64Value max_batch_size = 1;
  google.protobuf.Int64Value batch_timeout_micros = 2;
  google.protobuf.Int64Value max_enqueued_batches = 3;
  google.protobuf.Int64Value num_batch_threads = 4;
  google.protobuf.StringValue thread_pool_name = 5;
  repeated int64 allowed_batch_sizes = 6;
  bool pad_variable_length_inputs = 7;
  google.protobuf.BoolValue enable_large_batch_splitting = 8;
  google.protobuf.Int64Value max_execution_batch_size = 9;
}
"""

MONITORING_PROTO = """
syntax = "proto3";
package tensorflow.serving;

message PrometheusConfig {
  bool enable = 1;
  string path = 2;
}

message MonitoringConfig {
  PrometheusConfig prometheus_config = 1;
}
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, type]:
    """BatchingParameters and MonitoringConfig classes compiled by protoc now, in a pool of their own."""
    pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools compiles the TF Serving config protos")
    from deepclf.protocol.build_protos import compile_descriptor_set

    root = tmp_path_factory.mktemp("protos")
    sources = {
        "tensorflow_serving/servables/tensorflow/session_bundle_config.proto": BATCHING_PROTO,
        "tensorflow_serving/config/monitoring_config.proto": MONITORING_PROTO,
    }
    for rel, text in sources.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    # protoc runs in a child process: grpc_tools' protobuf segfaults a process that has loaded TensorFlow,
    # which the rest of the suite does.
    data = compile_descriptor_set(root)
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")
    }


@pytest.fixture(scope="module")
def msc_pb2():
    return pytest.importorskip(
        "tensorflow_serving.config.model_server_config_pb2",
        reason="tensorflow-serving-api (the dev extra) provides TF Serving's ModelServerConfig proto",
    )


@pytest.mark.parametrize("policy", ["specific", "all"])
def test_models_config_parses_as_model_server_config(tmp_path, msc_pb2, policy):
    models = scan_models(make_tree(tmp_path / "models", {"flowers_basic": (1, 2, 3), "flowers_augmented": (4,)}))
    opts = TFServingOptions(version_policy=policy)
    text = render_bundle(models, opts)["config/models.config"]
    config = text_format.Parse(text, msc_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert sorted(entries) == sorted(m.name for m in models)
    for model in models:
        c = entries[model.name]
        assert c.base_path == f"/models/{model.name}" and c.model_platform == "tensorflow"
        assert dict(c.version_labels) == version_labels(model)
        which = c.model_version_policy.WhichOneof("policy_choice")
        assert which == policy
        loaded = set(c.model_version_policy.specific.versions) if which == "specific" else set(model.versions)
        assert loaded == set(served_versions(model, opts))
        # TF Serving refuses labels on versions it does not load
        assert set(c.version_labels.values()) <= loaded
    assert dict(entries["flowers_basic"].version_labels) == {"stable": 2, "canary": 3}
    assert dict(entries["flowers_augmented"].version_labels) == {"stable": 4}


@pytest.mark.parametrize("cpus, max_batch", [(2, 32), (8, 24), (1, 1)])
def test_batching_parameters_parse_and_obey_tf_serving_rules(tmp_path, compiled, cpus, max_batch):
    models = scan_models(make_tree(tmp_path / "models", {"flowers": (1,)}))
    opts = TFServingOptions(cpus=cpus, max_batch_size=max_batch)
    text = render_bundle(models, opts)["config/batching_parameters.txt"]
    params = text_format.Parse(text, compiled["BatchingParameters"]())
    assert params.max_batch_size.value == max_batch
    assert params.num_batch_threads.value == cpus
    assert params.batch_timeout_micros.value == opts.batch_timeout_micros
    assert params.max_enqueued_batches.value == opts.max_enqueued_batches
    sizes = list(params.allowed_batch_sizes)
    # batching_session.cc: strictly increasing, and the last one equals max_batch_size
    assert sizes == sorted(set(sizes)) and sizes[-1] == params.max_batch_size.value
    assert params.pad_variable_length_inputs is False


def test_batching_parse_is_strict(compiled):
    # The check above can fail: a misspelt field is an error, as in the server.
    with pytest.raises(text_format.ParseError, match="allowed_batch_size"):
        text_format.Parse("allowed_batch_size: 4", compiled["BatchingParameters"]())


def test_monitoring_config_parses(tmp_path, compiled):
    models = scan_models(make_tree(tmp_path / "models", {"flowers": (1,)}))
    text = render_bundle(models, TFServingOptions())["config/monitoring.config"]
    config = text_format.Parse(text, compiled["MonitoringConfig"]())
    assert config.prometheus_config.enable is True
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_committed_example_configs_parse(msc_pb2, compiled):
    config_dir = example.EXAMPLE_DIR / "config"
    msc = text_format.Parse((config_dir / "models.config").read_text(), msc_pb2.ModelServerConfig())
    assert sorted(c.name for c in msc.model_config_list.config) == sorted(example.EXAMPLE_MODELS)
    text_format.Parse((config_dir / "batching_parameters.txt").read_text(), compiled["BatchingParameters"]())
    text_format.Parse((config_dir / "monitoring.config").read_text(), compiled["MonitoringConfig"]())
