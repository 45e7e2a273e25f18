"""Every committed and every generated manifest against Kubernetes' OpenAPI schemas, the TFJob schema, the
cross-references between objects and the kustomizations; and proof that each check catches what it claims to.

Schemas: kubernetes-validate (bundled OpenAPI schemas, offline), strict mode (unknown fields fail), for every
version in ``K8S_VERSIONS``. Kustomizations: resolved in Python always, and built with `kubectl kustomize` where
kubectl is installed (no cluster needed).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate  # noqa: F401 - the dev extra's validator: missing, this module fails instead of skipping
import pytest
import yaml

from deepclf.cli import main
from deepclf.deploy.common import ACCESS_MODES, StorageOptions
from deepclf.deploy.edge import EdgeOptions, render_edge
from deepclf.deploy.tfserving import TFServingOptions, render_bundle
from deepclf.deploy.training import TrainingOptions, render_training
from deepclf.deploy.validate import (
    K8S_VERSIONS,
    kustomization_folders,
    kustomization_problems,
    load_manifests,
    reference_problems,
    schema_problems,
    shipped_versions,
    tfjob_problems,
    validate_paths,
    validator_version,
)
from tests.deploy.conftest import DEPLOYMENT, REPO, write


def test_versions_are_shipped_and_the_dev_extra_has_the_validator():
    shipped = shipped_versions()
    assert set(K8S_VERSIONS) <= set(shipped), f"kubernetes-validate {validator_version()} ships {shipped}"
    assert len(K8S_VERSIONS) >= 2 and K8S_VERSIONS[-1] == shipped[-1], "validate against the newest it ships"
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(dep.startswith("kubernetes-validate") for dep in dev)


# ------------------------------------------------------------------------------------------- committed files


def test_every_committed_manifest_is_valid():
    count, problems = validate_paths([DEPLOYMENT])
    assert problems == []
    # nothing under deployment/ escaped: every .yaml is a validated object or a checked kustomization
    yaml_files = sorted(DEPLOYMENT.rglob("*.yaml"))
    kustomizations = [p for p in yaml_files if p.name == "kustomization.yaml"]
    assert count == len(yaml_files) - len(kustomizations)
    assert {p.parent for p in kustomizations} == set(kustomization_folders(DEPLOYMENT))
    kinds = {obj["kind"] for _, obj in load_manifests(DEPLOYMENT)}
    assert {
        "TFJob",
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
        "ConfigMap",
        "Pod",
    } <= kinds


def test_each_committed_bundle_is_self_contained():
    # the training bundle's convert job writes into the edge bundle's claim: named, not silently missing
    for folder, external in (("tfserving", []), ("edge-k8s", []), ("training-k8s", ["deepclf-edge-models"])):
        _, problems = validate_paths([DEPLOYMENT / folder], external_claims=external)
        assert problems == [], folder
    _, problems = validate_paths([DEPLOYMENT / "training-k8s"])
    assert len(problems) == 1 and "deepclf-edge-models" in problems[0]


# ------------------------------------------------------------------------------------------- generated files


def _variants():
    for mode in ACCESS_MODES:
        storage = StorageOptions(access_mode=mode, storage_class="standard" if mode == "ReadWriteOnce" else None)
        yield (
            f"training-{mode}",
            "training",
            TrainingOptions(workers=1 if mode == "ReadWriteOnce" else 4, storage=storage, epochs=3, model="augmented"),
        )
        yield (
            f"edge-{mode}",
            "edge",
            EdgeOptions(
                storage=storage,
                enable_batching=mode == "ReadOnlyMany",
                memory_request_mib=256 if mode == "ReadWriteOnce" else None,
            ),
        )
        yield (
            f"tfserving-{mode}",
            "tfserving",
            TFServingOptions(storage=storage, version_policy="all" if mode == "ReadOnlyMany" else "specific"),
        )


@pytest.mark.parametrize("label, kind, opts", list(_variants()), ids=lambda v: v if isinstance(v, str) else "")
def test_generated_bundles_are_valid(models, tmp_path, label, kind, opts):
    del label
    render = {
        "training": lambda: render_training(opts),
        "edge": lambda: render_edge(models, opts),
        "tfserving": lambda: render_bundle(models, opts),
    }[kind]
    root = write(tmp_path, render())
    _, problems = validate_paths([root], external_claims=["deepclf-edge-models"])
    assert problems == []


# ------------------------------------------------------------------- the checks catch what they claim to


def _edge_docs(models, tmp_path) -> list[tuple[str, dict]]:
    return load_manifests(write(tmp_path, render_edge(models, EdgeOptions())))


def _find(docs, kind, name=None):
    return next(obj for _, obj in docs if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name))


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["containers"][0].update(bogus=1),
            "'bogus' was unexpected",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
                containerPort="8500"
            ),
            "is not of type 'integer'",
        ),
        (
            lambda d: _find(d, "Service", "deepclf-edge")["spec"].update(publishNotReadyAddresses="yes"),
            "is not of type 'boolean'",
        ),
        (
            lambda d: _find(d, "HorizontalPodAutoscaler")["spec"].update(targetCPUUtilizationPercentage=70),
            "was unexpected",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["containers"][0].pop("name"),
            "'name' is a required property",
        ),
    ],
)
def test_schema_check_catches(models, tmp_path, mutate, fragment):
    docs = _edge_docs(models, tmp_path)
    mutate(docs)
    problems = schema_problems(docs)
    assert problems and all(fragment in p for p in problems)
    assert len(problems) == len(K8S_VERSIONS)  # once per Kubernetes version


def test_schema_check_knows_version_differences(tmp_path):
    # a field added in a later release is an error for the older version only (strict mode)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "i"}],
            "hostUsers": False,
            "resources": {"limits": {"cpu": "1"}},
        },
    }  # pod-level resources: Kubernetes 1.32+
    problems = schema_problems([("pod.yaml", pod)], versions=("1.30", "1.37"))
    assert len(problems) == 1 and "Kubernetes 1.30" in problems[0] and "'resources' was unexpected" in problems[0]


def _tfjob() -> dict:
    return yaml.safe_load(render_training(TrainingOptions())["tfjob/tfjob.yaml"])


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda j: j.update(apiVersion="kubeflow.org/v2"), "'kubeflow.org/v1' was expected"),
        (lambda j: j["spec"]["tfReplicaSpecs"]["Worker"].update(restartPolicy="Sometimes"), "is not one of"),
        (
            lambda j: j["spec"]["tfReplicaSpecs"].update(Launcher=j["spec"]["tfReplicaSpecs"]["Worker"]),
            "'Launcher' is not one of",
        ),
        (
            lambda j: j["spec"]["tfReplicaSpecs"].update(
                Chief=copy.deepcopy(j["spec"]["tfReplicaSpecs"]["Worker"]),
                Master=copy.deepcopy(j["spec"]["tfReplicaSpecs"]["Worker"]),
            ),
            "should not be valid",
        ),
        (
            lambda j: j["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].update(name="train"),
            "does not contain items matching",
        ),
        (lambda j: j["spec"]["tfReplicaSpecs"]["Worker"].update(replicas="2"), "is not of type 'integer'"),
        (lambda j: j["spec"]["runPolicy"].update(cleanPodPolicy="Some"), "is not one of"),
        (lambda j: j["spec"].update(tfReplicaSpecs={}), "should be non-empty"),
        (lambda j: j["spec"].pop("tfReplicaSpecs"), "'tfReplicaSpecs' is a required property"),
        (lambda j: j["metadata"].update(name="Flowers_Basic"), "does not match"),
        # the pod template is checked by Kubernetes' own PodTemplateSpec schema
        (
            lambda j: j["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].update(bogus=1),
            "'bogus' was unexpected",
        ),
        (
            lambda j: j["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"].update(
                terminationGracePeriodSeconds="30"
            ),
            "is not of type 'integer'",
        ),
    ],
)
def test_tfjob_check_catches(mutate, fragment):
    job = _tfjob()
    assert tfjob_problems(job, K8S_VERSIONS) == []
    mutate(job)
    problems = tfjob_problems(job, K8S_VERSIONS)
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (
            lambda d: _find(d, "Deployment")["spec"]["selector"]["matchLabels"].update(extra="x"),
            "does not match its pod labels",
        ),
        (
            lambda d: _find(d, "Service", "deepclf-edge")["spec"]["ports"][0].update(targetPort="grcp"),
            "targetPort 'grcp' is no container port",
        ),
        (
            lambda d: _find(d, "Service", "deepclf-edge-headless")["spec"]["selector"].update(
                **{"app.kubernetes.io/instance": "other"}
            ),
            "selects no pod template",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0].update(
                name="cfg"
            ),
            "volumeMount 'cfg' has no volume",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["configMap"].update(name="x"),
            "names ConfigMap 'x'",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"].update(
                claimName="models"
            ),
            "names PersistentVolumeClaim 'models'",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].update(
                tcpSocket={"port": "http"}
            ),
            "needs exactly one of",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["containers"][0]["livenessProbe"][
                "httpGet"
            ].update(port="rest"),
            "port name 'rest' is not a port",
        ),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"]["containers"][0]["startupProbe"][
                "httpGet"
            ].update(port=9999),
            "port 9999 is not a containerPort",
        ),
        (
            lambda d: _find(d, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(name="edge"),
            "names no object",
        ),
        (lambda d: _find(d, "Deployment")["spec"].update(replicas=2), "sets replicas"),
        (
            lambda d: _find(d, "Deployment")["spec"]["template"]["spec"].update(subdomain="deepclf-edge"),
            "is not a headless Service",
        ),
    ],
)
def test_reference_check_catches(models, tmp_path, mutate, fragment):
    docs = _edge_docs(models, tmp_path)
    assert reference_problems(docs) == []
    mutate(docs)
    problems = reference_problems(docs)
    assert any(fragment in p for p in problems), problems


# ---------------------------------------------------------------------------------------------- kustomize


def test_kustomization_check_catches(tmp_path, models):
    root = write(tmp_path, render_edge(models, EdgeOptions()))
    k8s = root / "k8s"
    assert kustomization_problems(k8s) == []
    (k8s / "extra.yaml").write_text((k8s / "hpa.yaml").read_text())
    assert any("extra.yaml is in the folder but not in resources" in p for p in kustomization_problems(k8s))
    (k8s / "extra.yaml").unlink()
    (k8s / "hpa.yaml").unlink()
    assert any("resource 'hpa.yaml' does not exist" in p for p in kustomization_problems(k8s))
    (k8s / "kustomization.yaml").write_text((k8s / "kustomization.yaml").read_text() + "namePrefx: x-\n")
    assert any("unknown field 'namePrefx'" in p for p in kustomization_problems(k8s))


def _objects(text: str) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(text) if o}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed; the Python check still ran")
@pytest.mark.parametrize(
    "folder", kustomization_folders(DEPLOYMENT), ids=lambda p: p.relative_to(DEPLOYMENT).as_posix()
)
def test_kubectl_kustomize_builds_every_committed_kustomization(folder: Path):
    proc = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]
    expected = set().union(*(_objects((folder / r).read_text()) for r in listed))
    assert _objects(proc.stdout) == expected
    # what kustomize built is itself valid (kustomize reorders and may normalise fields)
    built = [(f"kustomize {folder.name}", o) for o in yaml.safe_load_all(proc.stdout) if o]
    assert schema_problems(built) == []


# -------------------------------------------------------------------------------------------------- CLI


def test_cli_validate_reports_and_fails_on_problems(tmp_path, capsys, models):
    assert main(["deploy", "validate", str(DEPLOYMENT)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and f"kubernetes-validate {validator_version()}" in out
    root = write(tmp_path, render_edge(models, EdgeOptions()))
    hpa = root / "k8s" / "hpa.yaml"
    hpa.write_text(hpa.read_text().replace("minReplicas:", "minReplica:"))
    assert main(["deploy", "validate", str(root), "--kubernetes-version", "1.33"]) == 1
    captured = capsys.readouterr()
    assert "'minReplica' was unexpected" in captured.err and "1 problems" in captured.out


def test_cli_validate_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["deploy", "validate", str(DEPLOYMENT), "--kubernetes-version", "1.2"]) == 2
    err = capsys.readouterr().err
    assert "has no schemas for 1.2" in err and "Traceback" not in err
    assert main(["deploy", "validate", str(tmp_path / "missing")]) == 2
    assert "neither a manifest file nor a folder" in capsys.readouterr().err
