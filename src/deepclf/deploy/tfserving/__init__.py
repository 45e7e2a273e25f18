"""Deployment files for the official TF Serving image, generated from a models folder (no TensorFlow needed).

``deepclf serving tfserving-config MODELS_DIR --out DIR`` writes docker-compose, TF Serving's config files and
Kubernetes manifests; the same in Python::

    from deepclf.deploy.tfserving import TFServingOptions, render_bundle, scan_models, write_bundle

    files = render_bundle(scan_models("models"), TFServingOptions(cpus=4))
    write_bundle("deploy/tfserving", files, force=True)
"""

from deepclf.deploy.scan import ModelEntry, scan_models
from deepclf.deploy.tfserving.bundle import config_files, docker_compose, readme, render_bundle, write_bundle
from deepclf.deploy.tfserving.k8s import k8s_manifests
from deepclf.deploy.tfserving.options import (
    DEFAULT_IMAGE,
    TFServingOptions,
    batching_parameters,
    models_config,
    monitoring_config,
    server_args,
    version_labels,
)

__all__ = [
    "DEFAULT_IMAGE",
    "ModelEntry",
    "TFServingOptions",
    "batching_parameters",
    "config_files",
    "docker_compose",
    "k8s_manifests",
    "models_config",
    "monitoring_config",
    "readme",
    "render_bundle",
    "scan_models",
    "server_args",
    "version_labels",
    "write_bundle",
]
