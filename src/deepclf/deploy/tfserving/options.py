"""TF Serving configuration in TF Serving's own text formats, and the server flags that use them.

Everything here is a pure function of a ``TFServingOptions`` and the scanned models (``scan.ModelEntry``), so the
same inputs always give byte-identical files::

    opts = TFServingOptions(cpus=4)
    models = scan_models("models")
    print(models_config(models, opts))      # ModelServerConfig text: one config { } per model
    print(batching_parameters(opts))        # BatchingParameters text
    server_args(models, opts)               # ['--port=8500', '--rest_api_port=8501', '--model_config_file=...']

TF Serving facts these files rely on (from tensorflow/serving's ``server_core.cc`` and ``main.cc``):

* version labels are checked against *available* versions before any model is loaded, even on the very first
  config, so a server whose config has labels only starts with ``--allow_version_labels_for_unavailable_models``;
  a live reload that *moves* a label to a not-yet-loaded version is still refused (restart instead, see README).
* the REST and gRPC ports open only after the initial models have loaded, so a status probe that answers at
  all means the models are up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from deepclf.deploy.common import StorageOptions
from deepclf.deploy.scan import ModelEntry
from deepclf.errors import UsageError

#: The one place the official image is pinned: the TF Serving release that matches the TensorFlow exporting the
#: models (2.21, as `deepclf convert` runs; tensorflow-serving-api 2.21.0 is the same release's Python package).
#: A moving tag (``latest``) would change what a redeploy runs.
DEFAULT_IMAGE = "tensorflow/serving:2.21.0"

#: Where things are inside the container.
CONFIG_MOUNT = "/config"
MODELS_MOUNT = "/models"

#: File names, in the output folder's ``config/`` and in ``CONFIG_MOUNT``.
MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching_parameters.txt"
MONITORING_CONFIG = "monitoring.config"
CONFIG_FILES = (MODELS_CONFIG, BATCHING_CONFIG, MONITORING_CONFIG)

#: TF Serving's default Prometheus path (``PrometheusExporter::kPrometheusPath``), written out explicitly.
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"

LABEL_STABLE = "stable"
LABEL_CANARY = "canary"
VERSION_POLICIES = ("specific", "all")

_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")


@dataclass(frozen=True)
class TFServingOptions:
    """The knobs of a deployment. Defaults suit a small CPU-only box (2 cores, 2 GiB) serving the flowers CNNs.

    ``version_policy``: ``specific`` serves exactly the labelled versions (stable = the one before the newest,
    canary = the newest); ``all`` serves every version found and labels the same two.
    ``models_host_path``: the models folder as docker-compose sees it (relative paths are relative to the
    compose file); the ``MODELS_DIR`` environment variable overrides it at ``docker compose up`` time.
    ``storage``: the models claim's access mode and storage class on Kubernetes (``deepclf.deploy.common``).
    """

    image: str = DEFAULT_IMAGE
    grpc_port: int = 8500
    rest_port: int = 8501
    version_policy: str = "specific"
    poll_seconds: int = 60
    cpus: int = 2
    memory_mib: int = 2048
    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 16
    models_host_path: str = "../models"
    name: str = "deepclf-tfserving"
    min_replicas: int = 1
    max_replicas: int = 4
    target_cpu_percent: int = 70
    storage: StorageOptions = field(default_factory=StorageOptions)

    def __post_init__(self) -> None:
        def positive(name: str, value: int) -> None:
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")

        for name in (
            "cpus",
            "memory_mib",
            "max_batch_size",
            "max_enqueued_batches",
            "min_replicas",
            "max_replicas",
            "poll_seconds",
        ):
            positive(name, getattr(self, name))
        for name in ("grpc_port", "rest_port"):
            port = getattr(self, name)
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise UsageError(f"{name} must be a TCP port (1..65535), got {port!r}")
        if self.grpc_port == self.rest_port:
            raise UsageError(
                f"the gRPC and REST ports must differ (TF Serving refuses the same port), got {self.grpc_port} for both"
            )
        if not isinstance(self.batch_timeout_micros, int) or self.batch_timeout_micros < 0:
            raise UsageError(f"batch_timeout_micros must be >= 0, got {self.batch_timeout_micros!r}")
        if self.version_policy not in VERSION_POLICIES:
            raise UsageError(f"version_policy must be one of {list(VERSION_POLICIES)}, got {self.version_policy!r}")
        if not _IMAGE.match(self.image):
            raise UsageError(f"image must be a Docker image reference like {DEFAULT_IMAGE!r}, got {self.image!r}")
        if self.max_replicas < self.min_replicas:
            raise UsageError(f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})")
        if not 1 <= self.target_cpu_percent <= 100:
            raise UsageError(f"target_cpu_percent must be in 1..100, got {self.target_cpu_percent!r}")
        if not re.match(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$", self.name):
            raise UsageError(
                f"name must be a Kubernetes DNS-1123 label (lower-case letters, digits, '-', at most 42 characters "
                f"so derived names fit), got {self.name!r}"
            )
        if not self.models_host_path or any(c in self.models_host_path for c in '"\n$'):
            raise UsageError(f"models_host_path must be a plain path, got {self.models_host_path!r}")


def version_labels(model: ModelEntry) -> dict[str, int]:
    """``{"stable": older, "canary": newest}`` for a model with >= 2 versions, ``{"stable": only}`` otherwise."""
    if len(model.versions) == 1:
        return {LABEL_STABLE: model.versions[0]}
    return {LABEL_STABLE: model.versions[-2], LABEL_CANARY: model.versions[-1]}


def served_versions(model: ModelEntry, opts: TFServingOptions) -> tuple[int, ...]:
    """The versions TF Serving will load for ``model`` under ``opts.version_policy``."""
    if opts.version_policy == "all":
        return model.versions
    return tuple(sorted(set(version_labels(model).values())))


def models_config(models: Sequence[ModelEntry], opts: TFServingOptions) -> str:
    """The ``--model_config_file`` contents (``ModelServerConfig`` text format)."""
    out = [
        "# ModelServerConfig (tensorflow_serving/config/model_server_config.proto), text format.",
        "# Generated by `deepclf serving tfserving-config`; regenerate instead of editing.",
        f"# Version policy: {opts.version_policy}. Labels: '{LABEL_STABLE}' = the version before the newest, "
        f"'{LABEL_CANARY}' = the newest",
        "# (a model with one version has only 'stable'). Every labelled version is in the policy: TF Serving",
        "# refuses labels that point at versions it does not load.",
        "model_config_list {",
    ]
    for model in models:
        labels = version_labels(model)
        out += [
            "  config {",
            f'    name: "{model.name}"',
            f'    base_path: "{MODELS_MOUNT}/{model.name}"',
            '    model_platform: "tensorflow"',
        ]
        if opts.version_policy == "all":
            out += ["    model_version_policy { all {} }"]
        else:
            out += ["    model_version_policy {", "      specific {"]
            out += [f"        versions: {v}" for v in served_versions(model, opts)]
            out += ["      }", "    }"]
        for label, version in labels.items():
            out += ["    version_labels {", f'      key: "{label}"', f"      value: {version}", "    }"]
        out += ["  }"]
    out += ["}"]
    return "\n".join(out) + "\n"


def allowed_batch_sizes(max_batch_size: int) -> list[int]:
    """Powers of two below ``max_batch_size``, then ``max_batch_size`` itself (TF Serving wants it last)."""
    sizes, size = [], 1
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    return [*sizes, max_batch_size]


def batching_parameters(opts: TFServingOptions) -> str:
    """The ``--batching_parameters_file`` contents (``BatchingParameters`` text format), with the reasons."""
    sizes = " ".join(f"allowed_batch_sizes: {s}" for s in allowed_batch_sizes(opts.max_batch_size))
    return f"""\
# BatchingParameters (tensorflow_serving/servables/tensorflow/session_bundle_config.proto), text format.
# Generated by `deepclf serving tfserving-config`; regenerate instead of editing.
# CPU-only values, following TF Serving's batching guide ("CPU-only: one approach").

# One flowers image is 180x180x3 float32 (~380 KiB); 32 of them keep a batch's input near 12 MiB, and past ~32
# a CPU gains little throughput per image while every request in the batch waits for the whole batch.
max_batch_size {{ value: {opts.max_batch_size} }}

# Wait at most this long (1 ms) for a batch to fill. 0 is best under saturation; a little above 0 smooths batch
# sizes at low request rates and keeps tail latency low (the guide suggests trying 0 and 1-10 ms).
batch_timeout_micros {{ value: {opts.batch_timeout_micros} }}

# Requests beyond max_enqueued_batches * max_batch_size waiting are rejected with UNAVAILABLE, so an overloaded
# replica fails fast and the load balancer / autoscaler can react, instead of queueing without bound.
# (Set it to num_batch_threads for the tightest latency behind a balancer; higher for bulk jobs.)
max_enqueued_batches {{ value: {opts.max_enqueued_batches} }}

# One batch thread per CPU the container gets: more threads would only contend for the same cores.
num_batch_threads {{ value: {opts.cpus} }}

# Batches are padded up to the next allowed size: a bounded set of shapes (powers of two, padding waste < 2x)
# lets TensorFlow reuse its per-shape kernels instead of preparing new ones for every batch size.
{sizes}

# The flowers models take fixed-size images (or one encoded string per image): nothing of variable length.
pad_variable_length_inputs: false
"""


def monitoring_config(opts: TFServingOptions) -> str:
    """The ``--monitoring_config_file`` contents (``MonitoringConfig`` text format)."""
    return f"""\
# MonitoringConfig (tensorflow_serving/config/monitoring_config.proto), text format.
# Generated by `deepclf serving tfserving-config`; regenerate instead of editing.
# Prometheus metrics on the REST port: http://<host>:{opts.rest_port}{PROMETHEUS_PATH}
prometheus_config {{
  enable: true
  path: "{PROMETHEUS_PATH}"
}}
"""


def server_args(models: Sequence[ModelEntry], opts: TFServingOptions) -> list[str]:
    """The ``tensorflow_model_server`` flags, shared by docker-compose and Kubernetes."""
    del models  # the flags are the same for any set of models; kept for a uniform signature
    return [
        f"--port={opts.grpc_port}",
        f"--rest_api_port={opts.rest_port}",
        f"--model_config_file={CONFIG_MOUNT}/{MODELS_CONFIG}",
        # Re-read models.config this often: new versions / labels go live without a restart (see README).
        f"--model_config_file_poll_wait_seconds={opts.poll_seconds}",
        # Needed for a config with version_labels to load at all (labels are checked before models load).
        "--allow_version_labels_for_unavailable_models=true",
        "--enable_batching=true",
        f"--batching_parameters_file={CONFIG_MOUNT}/{BATCHING_CONFIG}",
        f"--monitoring_config_file={CONFIG_MOUNT}/{MONITORING_CONFIG}",
        # Replays assets.extra/tf_serving_warmup_requests (written by `deepclf convert`) before serving.
        "--enable_model_warmup=true",
        # TensorFlow sizes its thread pools from the host's cores, not the container's CPU limit; oversubscribing
        # a CPU quota gets the container throttled, so match the pools to what it gets.
        f"--tensorflow_intra_op_parallelism={opts.cpus}",
        f"--tensorflow_inter_op_parallelism={opts.cpus}",
    ]


def healthcheck_script(models: Sequence[ModelEntry], opts: TFServingOptions) -> str:
    """A bash command that succeeds when every model reports an AVAILABLE version on the REST status endpoint.

    The official image ships bash but neither curl nor wget, so this speaks HTTP over bash's ``/dev/tcp``.
    """
    steps = []
    for model in models:
        request = f"GET /v1/models/{model.name} HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n"
        steps.append(
            f"exec 3<>/dev/tcp/127.0.0.1/{opts.rest_port} && printf '{request}' >&3 && grep -q '\"AVAILABLE\"' <&3"
        )
    return " && ".join(steps)
