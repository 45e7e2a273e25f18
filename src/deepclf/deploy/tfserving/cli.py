"""``deepclf serving tfserving-config``: write TF Serving deployment files for a models folder.

::

    deepclf serving tfserving-config models --out deploy/tfserving
    deepclf serving tfserving-config models --out deploy/tfserving --cpus 4 --version-policy all --force

Registration imports nothing heavy (no TensorFlow, no YAML library): the generator reads only folder names and
``manifest.json`` files.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from deepclf.deploy.common import ACCESS_MODES, StorageOptions
from deepclf.deploy.scan import scan_models
from deepclf.deploy.tfserving.bundle import render_bundle, write_bundle
from deepclf.deploy.tfserving.options import (
    DEFAULT_IMAGE,
    VERSION_POLICIES,
    TFServingOptions,
    served_versions,
    version_labels,
)

_DEFAULTS = TFServingOptions()


def _serving_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    # Another module (the edge server's CLI) may have created `serving` already; add to it rather than clash.
    existing = subparsers.choices.get("serving")
    if existing is not None:
        for action in existing._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
        return existing.add_subparsers(dest="serving_command", metavar="SUBCOMMAND")
    serving = subparsers.add_parser(
        "serving",
        help="deployment files for model servers (TF Serving, edge)",
        description="Generate deployment files for model servers.",
    )
    serving.set_defaults(func=lambda args: (serving.print_help(), 2)[1])
    return serving.add_subparsers(dest="serving_command", metavar="SUBCOMMAND")


#: ``add_parser`` keywords of the command (also registered as ``deepclf deploy tfserving``).
PARSER_TEXT: dict[str, Any] = {
    "help": "docker-compose, TF Serving configs and Kubernetes manifests for a models folder",
    "description": (
        "Scan MODELS_DIR/<name>/<version>/ (as `deepclf convert` publishes it) and write docker-compose.yml, "
        "config/models.config, config/batching_parameters.txt, config/monitoring.config, k8s/*.yaml, "
        "files-pod.yaml and README.md into --out. Models with two or more versions get labels stable (the one "
        "before the newest) and canary (the newest). Needs no TensorFlow."
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serving tfserving-config`` to the ``deepclf`` parser."""
    sub = _serving_subparsers(subparsers)
    add_arguments(sub.add_parser("tfserving-config", **PARSER_TEXT))


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """``--out`` and ``--force``: where a bundle is written, and whether it may replace an earlier run's files."""
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--force", action="store_true", help="replace files a previous run wrote there")


def add_storage_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--access-mode`` and ``--storage-class`` for the claims a bundle creates (``what``: which ones)."""
    p.add_argument(
        "--access-mode",
        choices=ACCESS_MODES,
        default="ReadWriteMany",
        help=f"access mode of {what}: ReadWriteMany (pods on any node), ReadOnlyMany (pods on any node, "
        "created filled from a snapshot), ReadWriteOnce (block storage: every pod kept on one node) "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--storage-class", default=None, help=f"storage class of {what} (default: the cluster's default class)"
    )


def add_port_arguments(p: argparse.ArgumentParser, grpc_port: int, rest_port: int) -> None:
    """``--grpc-port`` and ``--rest-port`` of a model server, with these defaults."""
    p.add_argument("--grpc-port", type=int, default=grpc_port, help="default: %(default)s")
    p.add_argument("--rest-port", type=int, default=rest_port, help="default: %(default)s")


def add_scaling_arguments(p: argparse.ArgumentParser, min_replicas: int, max_replicas: int, target_cpu: int) -> None:
    """``--min-replicas``, ``--max-replicas`` and ``--target-cpu-percent`` of a bundle's HorizontalPodAutoscaler,
    with these defaults."""
    p.add_argument("--min-replicas", type=int, default=min_replicas, help="default: %(default)s")
    p.add_argument("--max-replicas", type=int, default=max_replicas, help="default: %(default)s")
    p.add_argument(
        "--target-cpu-percent",
        type=int,
        default=target_cpu,
        help="HPA target CPU utilisation (default: %(default)s)",
    )


def storage_options(args: argparse.Namespace) -> StorageOptions:
    """The ``StorageOptions`` of what ``add_storage_arguments`` parsed."""
    return StorageOptions(access_mode=args.access_mode, storage_class=args.storage_class)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``tfserving-config`` arguments and handler."""
    p.add_argument("models_dir", metavar="MODELS_DIR", help="the TF Serving models folder (<name>/<version>/)")
    add_output_arguments(p)
    p.add_argument("--image", default=DEFAULT_IMAGE, help="TF Serving image, pinned (default: %(default)s)")
    p.add_argument(
        "--version-policy",
        choices=VERSION_POLICIES,
        default=_DEFAULTS.version_policy,
        help="specific: serve the labelled versions only; all: every version found (default: %(default)s)",
    )
    add_port_arguments(p, _DEFAULTS.grpc_port, _DEFAULTS.rest_port)
    p.add_argument(
        "--poll-seconds",
        type=int,
        default=_DEFAULTS.poll_seconds,
        help="how often TF Serving re-reads models.config (default: %(default)s)",
    )
    p.add_argument(
        "--cpus",
        type=int,
        default=_DEFAULTS.cpus,
        help="CPUs per server: limits, batch threads, TF thread pools (default: %(default)s)",
    )
    p.add_argument(
        "--memory-mib", type=int, default=_DEFAULTS.memory_mib, help="memory per server in MiB (default: %(default)s)"
    )
    p.add_argument("--max-batch-size", type=int, default=_DEFAULTS.max_batch_size, help="default: %(default)s")
    p.add_argument(
        "--batch-timeout-micros", type=int, default=_DEFAULTS.batch_timeout_micros, help="default: %(default)s"
    )
    p.add_argument(
        "--max-enqueued-batches", type=int, default=_DEFAULTS.max_enqueued_batches, help="default: %(default)s"
    )
    p.add_argument(
        "--models-host-path",
        default=None,
        help="the models folder as written in docker-compose.yml (default: MODELS_DIR relative to --out)",
    )
    p.add_argument("--name", default=_DEFAULTS.name, help="Kubernetes object name (default: %(default)s)")
    add_scaling_arguments(p, _DEFAULTS.min_replicas, _DEFAULTS.max_replicas, _DEFAULTS.target_cpu_percent)
    add_storage_arguments(p, "the models claim")
    p.set_defaults(func=run_tfserving_config)


def default_models_host_path(models_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> str:
    """``models_dir`` relative to ``out_dir`` (docker-compose resolves relative paths against its file)."""
    models, out = Path(models_dir).resolve(), Path(out_dir).resolve()
    try:
        rel = os.path.relpath(models, out)
    except ValueError:  # different drives on Windows
        return models.as_posix()
    rel = Path(rel).as_posix()
    return rel if rel.startswith(".") else f"./{rel}"


def run_tfserving_config(args: argparse.Namespace) -> int:
    """Handler of ``deepclf serving tfserving-config``."""
    models = scan_models(args.models_dir)
    opts = TFServingOptions(
        image=args.image,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        version_policy=args.version_policy,
        poll_seconds=args.poll_seconds,
        cpus=args.cpus,
        memory_mib=args.memory_mib,
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        max_enqueued_batches=args.max_enqueued_batches,
        models_host_path=args.models_host_path or default_models_host_path(args.models_dir, args.out),
        name=args.name,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        target_cpu_percent=args.target_cpu_percent,
        storage=storage_options(args),
    )
    written = write_bundle(args.out, render_bundle(models, opts), force=args.force)
    for m in models:
        labels = ", ".join(f"{k}={v}" for k, v in version_labels(m).items())
        served = ",".join(str(v) for v in served_versions(m, opts))
        print(f"{m.name}: versions {','.join(str(v) for v in m.versions)}; serving {served}; labels {labels}")
    print(f"wrote {len(written)} files to {args.out} (start with: cd {args.out} && docker compose up -d)")
    return 0
