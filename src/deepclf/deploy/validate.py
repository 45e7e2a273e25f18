"""Validate generated Kubernetes manifests offline: schemas, cross-references, kustomizations.

Three layers, each returning a list of readable problems (empty: valid)::

    docs = load_manifests("deployment")                    # every *.yaml object: [(source, object), ...]
    schema_problems(docs, versions=("1.30", "1.37"))         # Kubernetes' OpenAPI schemas (strict) + our TFJob schema
    reference_problems(docs)                                 # selectors, ports, probes, volumes, claims, HPA targets
    kustomization_problems("deployment/edge-k8s/k8s")        # resources exist and parse, every manifest is listed

``deepclf deploy validate PATH...`` runs all three. The schemas come from ``kubernetes-validate`` (the ``dev``
extra), which bundles Kubernetes' OpenAPI schemas per minor version and works without a cluster; strict mode
rejects unknown fields. Custom resources are outside those schemas: the TFJob is checked against
``deepclf.deploy.tfjob_schema`` and each of its pod templates against Kubernetes' ``PodTemplate``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from deepclf.errors import MissingDependencyError, UsageError

#: Kubernetes minor versions the manifests are validated against: 1.30 (the oldest this project claims: managed
#: clusters' extended support reaches back to about there) and the newest that kubernetes-validate 1.37 ships.
K8S_VERSIONS = ("1.30", "1.33", "1.37")

Doc = tuple[str, dict[str, Any]]

#: The kustomization.yaml fields this check knows; anything else is most likely a typo.
_KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "configMapGenerator",
    "secretGenerator",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "images",
    "patches",
    "replicas",
}
_PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _yaml() -> Any:
    try:
        import yaml  # only validation reads YAML; generation writes it as text
    except ImportError:
        raise MissingDependencyError("pyyaml", "dev", "validating manifests") from None
    return yaml


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        raise MissingDependencyError(
            "kubernetes-validate", "dev", "validating manifests against Kubernetes' schemas"
        ) from None
    return kubernetes_validate


def validator_version() -> str:
    """The installed kubernetes-validate version (what README quotes)."""
    return str(_kubernetes_validate().__version__)


def shipped_versions() -> list[str]:
    """The Kubernetes minor versions whose schemas the installed kubernetes-validate bundles."""
    from kubernetes_validate import utils

    _kubernetes_validate()
    return sorted({utils.major_minor(v) for v in utils.all_versions()}, key=lambda v: tuple(map(int, v.split("."))))


# ------------------------------------------------------------------------------------------------------ loading


def manifest_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every ``*.yaml`` file under ``root`` (or ``root`` itself), sorted; ``*.yml`` (docker-compose) is not ours."""
    path = Path(root)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(
            f"{str(path)!r} is neither a manifest file nor a folder; expected a .yaml file or a folder "
            "of them (a generated bundle)"
        )
    return sorted(p for p in path.rglob("*.yaml") if p.is_file())


def load_manifests(*roots: str | os.PathLike[str]) -> list[Doc]:
    """``[(source, object)]`` for every Kubernetes object under ``roots`` (Kustomization files excluded)."""
    yaml = _yaml()
    docs: list[Doc] = []
    for root in roots:
        for path in manifest_files(root):
            for i, obj in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
                if obj is None:
                    continue
                source = f"{path}" + (f"[{i}]" if i else "")
                if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
                    raise UsageError(f"{source} is not a Kubernetes object (no apiVersion/kind)")
                if obj["kind"] != "Kustomization":
                    docs.append((source, obj))
    return docs


def _name(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# ------------------------------------------------------------------------------------------------------ schemas


def _k8s_problems(obj: Mapping[str, Any], version: str, where: str) -> list[str]:
    kv = _kubernetes_validate()
    try:
        kv.validate(dict(obj), version, strict=True)
    except kv.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(top level)"
        return [f"{where}: Kubernetes {version}: {path}: {exc.message}"]
    except kv.SchemaNotFoundError as exc:
        return [f"{where}: Kubernetes {version} has no schema for {exc.kind} {exc.api_version}"]
    return []


def tfjob_problems(obj: Mapping[str, Any], versions: Sequence[str], where: str = "TFJob") -> list[str]:
    """Our TFJob schema, then each replica's pod template as a Kubernetes ``PodTemplate`` for each version."""
    import jsonschema  # a kubernetes-validate dependency

    from deepclf.deploy.tfjob_schema import TFJOB_SCHEMA

    _kubernetes_validate()
    problems = [
        f"{where}: TFJob schema: {'.'.join(str(p) for p in e.path) or '(top level)'}: {e.message}"
        for e in sorted(jsonschema.Draft202012Validator(TFJOB_SCHEMA).iter_errors(dict(obj)), key=str)
    ]
    specs = obj.get("spec", {}).get("tfReplicaSpecs", {}) if isinstance(obj.get("spec"), dict) else {}
    for replica, spec in specs.items() if isinstance(specs, dict) else []:
        template = spec.get("template") if isinstance(spec, dict) else None
        if not isinstance(template, dict):
            continue
        wrapped = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"tfjob-{replica.lower()}"},
            "template": template,
        }
        for version in versions:
            problems += _k8s_problems(wrapped, version, f"{where}: tfReplicaSpecs.{replica}.template")
    return problems


def schema_problems(docs: Iterable[Doc], versions: Sequence[str] = K8S_VERSIONS) -> list[str]:
    """Each object against Kubernetes' strict schema for every version in ``versions`` (TFJob: ours)."""
    problems: list[str] = []
    for source, obj in docs:
        where = f"{source} ({_name(obj)})"
        if obj.get("apiVersion") == "kubeflow.org/v1" and obj.get("kind") == "TFJob":
            problems += tfjob_problems(obj, versions, where)
            continue
        for version in versions:
            problems += _k8s_problems(obj, version, where)
    return problems


# ------------------------------------------------------------------------------------------------- references


def pod_templates(obj: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    """``(what, pod labels, pod spec)`` for every pod an object creates (Pod, Deployment, Job, TFJob replicas)."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        yield _name(obj), dict(obj.get("metadata", {}).get("labels") or {}), spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        template = spec.get("template") or {}
        yield _name(obj), dict(template.get("metadata", {}).get("labels") or {}), template.get("spec") or {}
    elif kind == "TFJob":
        for replica, rspec in (spec.get("tfReplicaSpecs") or {}).items():
            template = rspec.get("template") or {}
            yield (
                f"{_name(obj)} {replica}",
                dict(template.get("metadata", {}).get("labels") or {}),
                template.get("spec") or {},
            )


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port_problems(container: Mapping[str, Any], port: object, what: str) -> list[str]:
    ports = container.get("ports") or []
    names = {p.get("name") for p in ports}
    numbers = {p.get("containerPort") for p in ports}
    if isinstance(port, str) and port not in names:
        return [f"{what}: port name {port!r} is not a port of container {container.get('name')!r} ({sorted(names)})"]
    if isinstance(port, int) and port not in numbers:
        return [f"{what}: port {port} is not a containerPort of {container.get('name')!r} ({sorted(numbers)})"]
    return []


def _pod_problems(
    what: str,
    spec: Mapping[str, Any],
    objects: Mapping[tuple[str, str], Mapping[str, Any]],
    external_claims: Iterable[str],
) -> list[str]:
    problems: list[str] = []
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    mounted: set[str] = set()
    for c in containers:
        cwhat = f"{what} container {c.get('name')!r}"
        port_names = [p.get("name") for p in c.get("ports") or [] if p.get("name")]
        if len(port_names) != len(set(port_names)):
            problems.append(f"{cwhat}: duplicate port names {port_names}")
        problems += [f"{cwhat}: port name {n!r} is longer than 15 characters" for n in port_names if len(n) > 15]
        for m in c.get("volumeMounts") or []:
            mounted.add(m.get("name"))
            if m.get("name") not in volumes:
                problems.append(f"{cwhat}: volumeMount {m.get('name')!r} has no volume of that name")
        for probe_name in _PROBES:
            probe = c.get(probe_name)
            if probe is None:
                continue
            handlers = [h for h in _HANDLERS if h in probe]
            if len(handlers) != 1:
                problems.append(f"{cwhat}: {probe_name} needs exactly one of {_HANDLERS}, has {handlers}")
            for h in handlers:
                if h != "exec":
                    problems += _port_problems(c, probe[h].get("port"), f"{cwhat} {probe_name}")
    for name, volume in volumes.items():
        if name not in mounted:
            problems.append(f"{what}: volume {name!r} is mounted by no container")
        if "configMap" in volume and ("ConfigMap", volume["configMap"].get("name")) not in objects:
            problems.append(
                f"{what}: volume {name!r} names ConfigMap {volume['configMap'].get('name')!r}, "
                "which no manifest defines"
            )
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"].get("claimName")
            if ("PersistentVolumeClaim", claim) not in objects and claim not in set(external_claims):
                problems.append(
                    f"{what}: volume {name!r} names PersistentVolumeClaim {claim!r}, which no manifest defines"
                )
    return problems


def reference_problems(docs: Iterable[Doc], *, external_claims: Iterable[str] = ()) -> list[str]:
    """Cross-references between objects that the schemas cannot see.

    Checked: Deployment selectors against their pod labels; Services select at least one pod template and every
    targetPort names a port of each selected container set; pod ``subdomain`` names a headless Service selecting
    the pod; volumeMounts against volumes (and no volume unmounted); ConfigMap and claim names against the
    manifests (``external_claims``: claims another bundle creates); probes have exactly one handler and their
    ports exist on the container; HPA targets exist and leave ``replicas`` to the HPA.
    """
    docs = list(docs)
    objects = {(obj["kind"], obj.get("metadata", {}).get("name")): obj for _, obj in docs}
    external = list(external_claims)
    pods = [(what, labels, spec) for _, obj in docs for what, labels, spec in pod_templates(obj)]
    problems: list[str] = []
    for what, _labels, spec in pods:
        problems += _pod_problems(what, spec, objects, external)
    for source, obj in docs:
        kind, spec = obj["kind"], obj.get("spec") or {}
        where = f"{source} ({_name(obj)})"
        if kind == "Deployment":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not _selects(selector, labels):
                problems.append(f"{where}: selector {selector} does not match its pod labels {labels}")
        if kind == "Service" and spec.get("selector"):
            selected = [(what, s) for what, labels, s in pods if _selects(spec["selector"], labels)]
            if not selected:
                problems.append(f"{where}: selector {spec['selector']} selects no pod template in these manifests")
            for port in spec.get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                for what, s in selected:
                    containers = s.get("containers") or []
                    if not any(not _port_problems(c, target, "") for c in containers):
                        problems.append(f"{where}: targetPort {target!r} is no container port of {what}")
        if kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            target = objects.get((ref.get("kind"), ref.get("name")))
            if target is None or target.get("apiVersion") != ref.get("apiVersion"):
                problems.append(f"{where}: scaleTargetRef {ref} names no object in these manifests")
            elif "replicas" in (target.get("spec") or {}):
                problems.append(f"{where}: {_name(target)} sets replicas, which every apply would reset under the HPA")
    for what, labels, spec in pods:
        subdomain = spec.get("subdomain")
        if subdomain is None:
            continue
        svc = objects.get(("Service", subdomain))
        if svc is None or (svc.get("spec") or {}).get("clusterIP") != "None":
            problems.append(f"{what}: subdomain {subdomain!r} is not a headless Service in these manifests")
        elif not _selects(svc["spec"].get("selector") or {}, labels):
            problems.append(f"{what}: headless Service {subdomain!r} does not select these pods")
    return problems


# ----------------------------------------------------------------------------------------------- kustomization


def kustomization_problems(folder: str | os.PathLike[str], *, _seen: set[Path] | None = None) -> list[str]:
    """What ``kubectl apply -k folder`` would trip over, without kubectl.

    The file parses and is a Kustomization with known keys only; every resource exists (a file: a Kubernetes
    object; a folder: another kustomization, checked in turn); every configMapGenerator file exists; every other
    ``*.yaml`` in the folder is listed (a manifest left out would silently not be applied); no two resources
    define the same kind and name.
    """
    yaml = _yaml()
    root = Path(folder).resolve()
    seen = _seen if _seen is not None else set()
    if root in seen:
        return [f"{root}: kustomization includes itself"]
    seen.add(root)
    path = root / "kustomization.yaml"
    if not path.is_file():
        return [f"{root}: no kustomization.yaml"]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if (
        not isinstance(data, dict)
        or data.get("kind") != "Kustomization"
        or data.get("apiVersion") != "kustomize.config.k8s.io/v1beta1"
    ):
        return [f"{path}: not a kustomize.config.k8s.io/v1beta1 Kustomization"]
    problems = [f"{path}: unknown field {k!r}" for k in sorted(set(data) - _KUSTOMIZATION_KEYS)]
    listed: set[Path] = set()
    names: dict[tuple[str, str], str] = {}
    for entry in data.get("resources") or []:
        target = (root / entry).resolve()
        if not target.exists():
            problems.append(f"{path}: resource {entry!r} does not exist")
        elif target.is_dir():
            problems += kustomization_problems(target, _seen=seen)
        else:
            listed.add(target)
            for obj in yaml.safe_load_all(target.read_text(encoding="utf-8")):
                if not isinstance(obj, dict) or "kind" not in obj:
                    problems.append(f"{path}: resource {entry!r} holds something that is not a Kubernetes object")
                    continue
                key = (obj["kind"], obj.get("metadata", {}).get("name"))
                if key in names:
                    problems.append(f"{path}: {key[0]}/{key[1]} is defined twice ({names[key]} and {entry})")
                names[key] = entry
    for generator in data.get("configMapGenerator") or []:
        for item in generator.get("files") or []:
            file = item.split("=", 1)[-1]
            if not (root / file).is_file():
                problems.append(f"{path}: configMapGenerator file {file!r} does not exist")
    for other in sorted(root.glob("*.yaml")):
        if other.name != "kustomization.yaml" and other.resolve() not in listed:
            problems.append(f"{path}: {other.name} is in the folder but not in resources (it would not be applied)")
    return problems


def kustomization_folders(root: str | os.PathLike[str]) -> list[Path]:
    """Every folder under ``root`` holding a kustomization.yaml."""
    base = Path(root)
    folders = [p.parent for p in base.rglob("kustomization.yaml")] if base.is_dir() else []
    return sorted(folders)


def validate_paths(
    paths: Sequence[str | os.PathLike[str]],
    versions: Sequence[str] = K8S_VERSIONS,
    *,
    external_claims: Iterable[str] = (),
) -> tuple[int, list[str]]:
    """All three layers over ``paths``: (number of objects checked, problems)."""
    docs = load_manifests(*paths)
    problems = schema_problems(docs, versions) + reference_problems(docs, external_claims=external_claims)
    for root in paths:
        for folder in kustomization_folders(root):
            problems += kustomization_problems(folder)
    return len(docs), problems
