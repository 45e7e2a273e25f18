"""``deepclf deploy``: Kubernetes bundles for training and serving, and their offline validation.

::

    deepclf deploy training --out deploy/training --workers 3 --model basic --epochs 10 --image REGISTRY/deepclf-train:0.1.0
    deepclf deploy edge models --out deploy/edge --image REGISTRY/deepclf-edge:0.1.0
    deepclf deploy tfserving models --out deploy/tfserving     # the same as `deepclf serving tfserving-config`
    deepclf deploy validate deploy/ --kubernetes-version 1.30 --kubernetes-version 1.37

Registration imports nothing heavy (no TensorFlow, no YAML library): generation writes text; only ``validate``
loads PyYAML and kubernetes-validate (the ``dev`` extra), inside its handler.
"""

from __future__ import annotations

import argparse
import sys

from deepclf.deploy.tfserving import cli as tfserving_cli
from deepclf.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``deploy training|edge|tfserving|validate`` to the ``deepclf`` parser."""
    deploy = subparsers.add_parser(
        "deploy",
        help="Kubernetes manifests: multi-worker training, the edge server, TF Serving; validation",
        description="Generate Kubernetes bundles (kubectl apply -k) for training and serving, or validate them.",
    )
    deploy.set_defaults(func=lambda args: (deploy.print_help(), 2)[1])
    sub = deploy.add_subparsers(dest="deploy_command", metavar="SUBCOMMAND")
    _register_training(sub)
    _register_edge(sub)
    tfserving_cli.add_arguments(sub.add_parser("tfserving", **tfserving_cli.PARSER_TEXT))
    _register_validate(sub)


def _register_training(sub: argparse._SubParsersAction) -> None:
    from deepclf.deploy.training import DEFAULT_IMAGE, TRAIN_MODELS, TrainingOptions

    d = TrainingOptions()
    p = sub.add_parser(
        "training",
        help="run `deepclf train` on N workers: a Kubeflow TFJob, or an Indexed Job without the operator",
        description=(
            "Write storage/ (claims for the photos and the run folders), tfjob/ (Kubeflow TFJob: the operator sets "
            "TF_CONFIG), indexed-job/ (an Indexed Job and a headless Service; a wrapper builds TF_CONFIG from the "
            "pod's completion index), files-pod.yaml, convert-job.yaml and README.md into --out."
        ),
    )
    tfserving_cli.add_output_arguments(p)
    p.add_argument("--name", default=d.name, help="job name; pods are <name>-<index> (default: %(default)s)")
    p.add_argument("--model", choices=TRAIN_MODELS, default=d.model, help="default: %(default)s")
    p.add_argument("--workers", type=int, default=d.workers, help="number of workers (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's (10 basic, 15 augmented)")
    p.add_argument(
        "--image",
        default=DEFAULT_IMAGE,
        help="the training image built from deployment/train/Dockerfile (default: %(default)s)",
    )
    p.add_argument("--data-subdir", default=d.data_subdir, help="photo folder in the data claim (default: %(default)s)")
    p.add_argument("--run", default=None, help="run folder name in the runs claim (default: --name)")
    p.add_argument("--port", type=int, default=d.port, help="the workers' gRPC port (default: %(default)s)")
    p.add_argument("--cpus", type=int, default=d.cpus, help="CPUs per worker (default: %(default)s)")
    p.add_argument("--memory-mib", type=int, default=d.memory_mib, help="memory per worker (default: %(default)s)")
    p.add_argument(
        "--backoff-limit",
        type=int,
        default=d.backoff_limit,
        help="restarts before the job fails (default: %(default)s)",
    )
    p.add_argument("--data-size", default=d.data_size, help="size of the data claim (default: %(default)s)")
    p.add_argument("--runs-size", default=d.runs_size, help="size of the runs claim (default: %(default)s)")
    p.add_argument("--data-claim", default=d.data_claim, help="default: %(default)s")
    p.add_argument("--runs-claim", default=d.runs_claim, help="default: %(default)s")
    p.add_argument(
        "--models-claim",
        default=d.models_claim,
        help="the claim convert-job.yaml publishes into (default: %(default)s, what `deepclf deploy edge` creates)",
    )
    p.add_argument(
        "--model-name", default=None, help="name convert-job.yaml publishes under (default: flowers_<model>)"
    )
    tfserving_cli.add_storage_arguments(p, "the data and runs claims")
    p.set_defaults(func=run_training)


def _register_edge(sub: argparse._SubParsersAction) -> None:
    from deepclf.deploy.edge import DEFAULT_IMAGE, EDGE_FORMATS, EdgeOptions
    from deepclf.deploy.tfserving.options import VERSION_POLICIES
    from deepclf.variants import variant_arg

    d = EdgeOptions()
    p = sub.add_parser(
        "edge",
        help="the edge server (`deepclf serve`) on Kubernetes for a models folder",
        description=(
            "Scan MODELS_DIR/<name>/<version>/ and write k8s/ (ConfigMap with models.config, PVC, Deployment with "
            "probes on /readyz and /healthz, a ClusterIP and a headless Service, HPA, kustomization), "
            "files-pod.yaml and README.md into --out. Needs no TensorFlow."
        ),
    )
    p.add_argument("models_dir", metavar="MODELS_DIR", help="the models folder (<name>/<version>/)")
    tfserving_cli.add_output_arguments(p)
    p.add_argument("--name", default=d.name, help="Kubernetes object name (default: %(default)s)")
    p.add_argument(
        "--image",
        default=DEFAULT_IMAGE,
        help="the edge image built from deployment/edge/Dockerfile (default: %(default)s)",
    )
    tfserving_cli.add_port_arguments(p, d.grpc_port, d.rest_port)
    p.add_argument(
        "--format",
        type=variant_arg,
        choices=EDGE_FORMATS,
        default=d.format,
        help="LiteRT variant (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help="inference threads, also the CPUs requested (default: %(default)s)",
    )
    p.add_argument("--enable-batching", action="store_true", help="merge concurrent requests into batches")
    p.add_argument(
        "--version-policy",
        choices=VERSION_POLICIES,
        default=d.version_policy,
        help="specific: the labelled versions; all: every version found (default: %(default)s)",
    )
    p.add_argument(
        "--memory-request-mib",
        type=int,
        default=None,
        help="default: 192 + 64 per served version beyond the first (from measured RSS)",
    )
    p.add_argument("--memory-limit-mib", type=int, default=None, help="default: the request + 320")
    tfserving_cli.add_scaling_arguments(p, d.min_replicas, d.max_replicas, d.target_cpu_percent)
    p.add_argument(
        "--grace-seconds",
        type=int,
        default=d.grace_seconds,
        help="how long SIGTERM drains in-flight requests (default: %(default)s)",
    )
    p.add_argument("--models-size", default=d.models_size, help="size of the models claim (default: %(default)s)")
    tfserving_cli.add_storage_arguments(p, "the models claim")
    p.set_defaults(func=run_edge)


def _register_validate(sub: argparse._SubParsersAction) -> None:
    from deepclf.deploy.validate import K8S_VERSIONS  # data only, no YAML import

    p = sub.add_parser(
        "validate",
        help="check manifests offline: Kubernetes schemas (strict), TFJob schema, references, kustomize",
        description=(
            "Validate every *.yaml under PATH against Kubernetes' OpenAPI schemas (kubernetes-validate, strict: "
            "unknown fields fail) for each --kubernetes-version, TFJobs against deepclf's TFJob schema, the "
            "references between objects (selectors, ports, probes, volumes, claims, HPA targets) and every "
            "kustomization.yaml. Needs the dev extra (kubernetes-validate); no cluster."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or folders")
    p.add_argument(
        "--kubernetes-version",
        action="append",
        default=None,
        metavar="X.Y",
        help=f"Kubernetes minor version to validate against; repeat for several (default: {', '.join(K8S_VERSIONS)})",
    )
    p.add_argument(
        "--external-claim",
        action="append",
        default=[],
        metavar="NAME",
        help="a PersistentVolumeClaim another bundle creates (not an error when no manifest here does)",
    )
    p.set_defaults(func=run_validate)


def run_training(args: argparse.Namespace) -> int:
    """Handler of ``deepclf deploy training``."""
    from deepclf.deploy.tfserving.bundle import write_bundle
    from deepclf.deploy.training import TrainingOptions, render_training, worker_hosts

    opts = TrainingOptions(
        name=args.name,
        model=args.model,
        workers=args.workers,
        epochs=args.epochs,
        image=args.image,
        data_subdir=args.data_subdir,
        run=args.run,
        port=args.port,
        cpus=args.cpus,
        memory_mib=args.memory_mib,
        backoff_limit=args.backoff_limit,
        data_size=args.data_size,
        runs_size=args.runs_size,
        data_claim=args.data_claim,
        runs_claim=args.runs_claim,
        models_claim=args.models_claim,
        model_name=args.model_name,
        storage=tfserving_cli.storage_options(args),
    )
    written = write_bundle(args.out, render_training(opts), force=args.force)
    print(f"{opts.workers} workers: {', '.join(worker_hosts(opts))}; run folder {opts.run_dir}")
    print(
        f"wrote {len(written)} files to {args.out} (start with: kubectl apply -k {args.out}/storage, then "
        f"kubectl apply -k {args.out}/tfjob or {args.out}/indexed-job; see README.md)"
    )
    return 0


def run_edge(args: argparse.Namespace) -> int:
    """Handler of ``deepclf deploy edge``."""
    from deepclf.deploy.edge import EdgeOptions, memory_mib, render_edge, served_count
    from deepclf.deploy.scan import scan_models
    from deepclf.deploy.tfserving.bundle import write_bundle

    models = scan_models(args.models_dir)
    opts = EdgeOptions(
        name=args.name,
        image=args.image,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        format=args.format,
        threads=args.threads,
        enable_batching=args.enable_batching,
        version_policy=args.version_policy,
        memory_request_mib=args.memory_request_mib,
        memory_limit_mib=args.memory_limit_mib,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        target_cpu_percent=args.target_cpu_percent,
        grace_seconds=args.grace_seconds,
        models_size=args.models_size,
        storage=tfserving_cli.storage_options(args),
    )
    written = write_bundle(args.out, render_edge(models, opts), force=args.force)
    request, limit = memory_mib(models, opts)
    print(
        f"{len(models)} models, {served_count(models, opts)} versions per replica; memory {request}Mi request, "
        f"{limit}Mi limit"
    )
    print(f"wrote {len(written)} files to {args.out} (start with: kubectl apply -k {args.out}/k8s; see README.md)")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Handler of ``deepclf deploy validate``: prints every problem; exit 1 when there is one."""
    from deepclf.deploy.validate import K8S_VERSIONS, shipped_versions, validate_paths, validator_version

    versions = args.kubernetes_version or list(K8S_VERSIONS)
    shipped = shipped_versions()
    unknown = [v for v in versions if v not in shipped]
    if unknown:
        raise UsageError(
            f"kubernetes-validate {validator_version()} has no schemas for {', '.join(unknown)}; "
            f"expected minor versions among {shipped[0]}..{shipped[-1]}"
        )
    count, problems = validate_paths(args.paths, versions, external_claims=args.external_claim)
    for problem in problems:
        print(problem, file=sys.stderr)
    verdict = f"{len(problems)} problems" if problems else "valid"
    print(
        f"{count} objects in {', '.join(args.paths)}: {verdict} (Kubernetes {', '.join(versions)}, strict; "
        f"kubernetes-validate {validator_version()}; references; kustomizations)"
    )
    return 1 if problems else 0
