"""`deepclf deploy training`: the TFJob, the Indexed Job and its TF_CONFIG wrapper, storage, image, CLI.

Schemas are checked in test_validate.py; here every reference inside the bundle is checked against the options
and against the real `deepclf train` / `deepclf convert` parsers, and the wrapper script runs in a real shell.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from deepclf.cli import build_parser, main
from deepclf.deploy.common import StorageOptions
from deepclf.deploy.edge import EdgeOptions
from deepclf.deploy.training import (
    ENGINE_LABEL,
    IMAGE_UID,
    TrainingOptions,
    render_training,
    train_command,
    worker_hosts,
)
from deepclf.errors import UsageError
from tests.deploy.conftest import DEPLOYMENT, REPO, parse

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _bundle(**kwargs) -> dict[str, dict]:
    return parse(render_training(TrainingOptions(**kwargs)))


def _container(pod_spec: dict) -> dict:
    (container,) = pod_spec["containers"]
    return container


@pytest.fixture()
def fake_deepclf(tmp_path: Path) -> Path:
    """A `deepclf` on PATH that prints what it was started with as JSON (TF_CONFIG and its arguments)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "deepclf"
    script.write_text(
        f"#!{shutil.which('python3') or '/usr/bin/python3'}\n"
        "import json, os, sys\n"
        "print(json.dumps({'tf_config': os.environ.get('TF_CONFIG'), 'argv': sys.argv[1:]}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


# -------------------------------------------------------------------------------------------- Indexed Job


@pytest.mark.skipif(shutil.which("sh") is None, reason="the wrapper is a POSIX shell script; sh is not installed")
@pytest.mark.parametrize("workers", [1, 3])
def test_indexed_job_builds_tf_config_from_the_completion_index(workers, fake_deepclf):
    docs = _bundle(name="flowers-x", workers=workers, epochs=4, port=2345)
    job, svc = docs["indexed-job/job.yaml"], docs["indexed-job/service.yaml"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == workers  # every worker at once
    pod = spec["template"]["spec"]
    container = _container(pod)
    # the DNS names: pods are <job>-<index>, the subdomain is the headless Service, which selects them
    assert pod["subdomain"] == svc["metadata"]["name"] == "flowers-x-workers"
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    (port,) = container["ports"]
    (svc_port,) = svc["spec"]["ports"]
    assert port["containerPort"] == svc_port["port"] == 2345 and svc_port["targetPort"] == port["name"]
    # run the real command in a real shell, once per index, with a stand-in deepclf that reports TF_CONFIG
    for index in range(workers):
        env = {"PATH": f"{fake_deepclf}:{os.environ['PATH']}", "JOB_COMPLETION_INDEX": str(index)}
        proc = subprocess.run(
            container["command"] + container["args"], env=env, capture_output=True, text=True, timeout=30, check=True
        )
        report = json.loads(proc.stdout.splitlines()[-1])
        tf_config = json.loads(report["tf_config"])
        expected = [f"{job['metadata']['name']}-{i}.{pod['subdomain']}:{port['containerPort']}" for i in range(workers)]
        assert tf_config == {"cluster": {"worker": expected}, "task": {"type": "worker", "index": index}}
        assert (
            ["deepclf", *report["argv"]]
            == container["args"]
            == train_command(TrainingOptions(name="flowers-x", workers=workers, epochs=4, port=2345))
        )
        assert proc.stdout.startswith("TF_CONFIG=")  # logged, so `kubectl logs` shows the cluster each pod saw


@pytest.mark.skipif(shutil.which("sh") is None, reason="the wrapper is a POSIX shell script; sh is not installed")
def test_indexed_job_wrapper_refuses_to_run_without_an_index(fake_deepclf):
    container = _container(_bundle()["indexed-job/job.yaml"]["spec"]["template"]["spec"])
    env = {"PATH": f"{fake_deepclf}:{os.environ['PATH']}"}
    proc = subprocess.run(container["command"] + container["args"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and proc.stdout == ""  # deepclf never started
    assert "JOB_COMPLETION_INDEX" in proc.stderr and "Indexed Job" in proc.stderr


def test_worker_hosts_fit_dns():
    opts = TrainingOptions(name="a" * 40, workers=64)
    for host in worker_hosts(opts):
        name, sub = host.split(":")[0].split(".")
        assert len(name) <= 63 and len(sub) <= 63


# ------------------------------------------------------------------------------------------------ TFJob


def test_tfjob_runs_the_same_command_on_n_workers():
    docs = _bundle(name="flowers-aug", model="augmented", workers=4, epochs=15)
    tfjob, job = docs["tfjob/tfjob.yaml"], docs["indexed-job/job.yaml"]
    assert (tfjob["apiVersion"], tfjob["kind"]) == ("kubeflow.org/v1", "TFJob")
    assert set(tfjob["spec"]["tfReplicaSpecs"]) == {"Worker"}  # worker 0 is the chief
    worker = tfjob["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 4 and worker["restartPolicy"] == "OnFailure"
    container = _container(worker["template"]["spec"])
    # the operator injects TF_CONFIG into the container named "tensorflow", with the port named "tfjob-port"
    assert container["name"] == "tensorflow"
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("tfjob-port", 2222)]
    assert "env" not in container or all(e["name"] != "TF_CONFIG" for e in container["env"])
    # the same deepclf command as the Indexed Job's
    job_container = _container(job["spec"]["template"]["spec"])
    assert container["command"] == job_container["args"]
    assert container["image"] == job_container["image"] and container["resources"] == job_container["resources"]
    assert container["volumeMounts"] == job_container["volumeMounts"]
    # the two engines' pods are told apart, so the headless Service picks only the Indexed Job's
    assert worker["template"]["metadata"]["labels"][ENGINE_LABEL] == "tfjob"
    assert job["spec"]["template"]["metadata"]["labels"][ENGINE_LABEL] == "indexed-job"
    assert docs["indexed-job/service.yaml"]["spec"]["selector"][ENGINE_LABEL] == "indexed-job"


def test_commands_parse_with_the_real_deepclf_parsers():
    docs = _bundle(model="augmented", epochs=7, data_subdir="photos", run="r1", model_name="flowers_aug")
    parser = build_parser()
    command = _container(docs["tfjob/tfjob.yaml"]["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"])["command"]
    assert command[0] == "deepclf"
    args = parser.parse_args(command[1:])
    assert (args.command, args.model, args.data, args.out, args.epochs, args.strategy) == (
        "train",
        "augmented",
        "/data/photos",
        "/runs/r1",
        7,
        "multiworker",
    )
    convert = _container(docs["convert-job.yaml"]["spec"]["template"]["spec"])["command"]
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None  # the subcommands' action
    if "convert" not in commands:
        pytest.skip("`deepclf convert` is not registered in this checkout")
    args = parser.parse_args(convert[1:])
    assert (args.command, args.run_dir, args.out, args.name, args.data) == (
        "convert",
        "/runs/r1",
        "/models",
        "flowers_aug",
        "/data/photos",
    )


def test_epochs_default_to_the_models_own():
    command = train_command(TrainingOptions(epochs=None))
    assert "--epochs" not in command
    assert build_parser().parse_args(command[1:]).epochs is None


# --------------------------------------------------------------------------------------- storage, security


def test_volumes_claims_and_mounts_line_up():
    docs = _bundle()
    claims = {d["metadata"]["name"]: d for rel, d in docs.items() if rel.startswith("storage/pvc-")}
    assert set(claims) == {"deepclf-data", "deepclf-runs"}
    pods = {
        "tfjob": docs["tfjob/tfjob.yaml"]["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"],
        "job": docs["indexed-job/job.yaml"]["spec"]["template"]["spec"],
    }
    for pod in pods.values():
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m for m in _container(pod)["volumeMounts"]}
        assert set(volumes) == set(mounts) == {"data", "runs", "tmp"}
        assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "deepclf-data", "readOnly": True}
        assert mounts["data"]["readOnly"] is True and mounts["data"]["mountPath"] == "/data"
        # the chief writes the run folder: the runs claim is mounted writable at the --out parent
        assert volumes["runs"]["persistentVolumeClaim"] == {"claimName": "deepclf-runs"}
        assert "readOnly" not in mounts["runs"] and mounts["runs"]["mountPath"] == "/runs"
        assert "emptyDir" in volumes["tmp"] and mounts["tmp"]["mountPath"] == "/tmp"
        args = _container(pod).get("args") or _container(pod)["command"]
        assert args[args.index("--out") + 1].startswith("/runs/")
        assert args[args.index("--data") + 1].startswith("/data/")
    # the convert job reads runs and data, and writes into the claim the edge bundle creates by default
    convert = docs["convert-job.yaml"]["spec"]["template"]["spec"]
    claims_used = {v["name"]: v["persistentVolumeClaim"] for v in convert["volumes"] if "persistentVolumeClaim" in v}
    assert claims_used["runs"] == {"claimName": "deepclf-runs", "readOnly": True}
    assert claims_used["models"] == {"claimName": f"{EdgeOptions().name}-models"}
    # the files pod mounts both claims writable (to copy photos in)
    files = docs["files-pod.yaml"]["spec"]
    assert {v["persistentVolumeClaim"]["claimName"] for v in files["volumes"] if "persistentVolumeClaim" in v} == set(
        claims
    )


def _pod_specs(docs: dict[str, dict]) -> dict[str, dict]:
    return {
        "tfjob": docs["tfjob/tfjob.yaml"]["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"],
        "job": docs["indexed-job/job.yaml"]["spec"]["template"]["spec"],
        "convert": docs["convert-job.yaml"]["spec"]["template"]["spec"],
        "files": docs["files-pod.yaml"]["spec"],
    }


def test_every_pod_runs_unprivileged_as_the_images_user():
    dockerfile = (DEPLOYMENT / "train" / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, flags=re.M)
    assert user and int(user[1]) == int(user[2]) == IMAGE_UID
    for what, pod in _pod_specs(_bundle()).items():
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["runAsGroup"] == sc["fsGroup"] == IMAGE_UID, what
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, what
        csc = _container(pod)["securityContext"]
        assert csc == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, what
        assert {"name": "tmp", "mountPath": "/tmp"} in _container(pod)["volumeMounts"], what


def test_resources_are_guaranteed_and_sized_by_the_options():
    docs = _bundle(cpus=4, memory_mib=6144)
    for what in ("tfjob", "job"):
        res = _container(_pod_specs(docs)[what])["resources"]
        assert res["requests"] == res["limits"] == {"cpu": "4", "memory": "6144Mi"}
    text = render_training(TrainingOptions())["tfjob/tfjob.yaml"]
    assert "peaks at 2355 MiB RSS" in text  # the measurement behind the default is stated beside it


@pytest.mark.parametrize("mode", ["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce"])
def test_access_modes(mode):
    docs = _bundle(storage=StorageOptions(access_mode=mode, storage_class="fast-nfs"))
    for rel in ("storage/pvc-data.yaml", "storage/pvc-runs.yaml"):
        assert docs[rel]["spec"]["accessModes"] == [mode]
        assert docs[rel]["spec"]["storageClassName"] == "fast-nfs"
    for what in ("tfjob", "job"):
        pod = _pod_specs(docs)[what]
        if mode == "ReadWriteOnce":  # one node at a time: every worker joins the others on one node
            (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert term["topologyKey"] == "kubernetes.io/hostname"
            labels = (
                docs["tfjob/tfjob.yaml"]["spec"]["tfReplicaSpecs"]["Worker"]["template"]
                if what == "tfjob"
                else docs["indexed-job/job.yaml"]["spec"]["template"]
            )["metadata"]["labels"]
            assert term["labelSelector"]["matchLabels"].items() <= labels.items()
        else:
            assert "affinity" not in pod
    readme = render_training(TrainingOptions(storage=StorageOptions(access_mode=mode)))["README.md"]
    assert ("does not scale out" in readme) is (mode == "ReadWriteOnce")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"name": "Flowers"}, "DNS label"),
        ({"name": "1flowers"}, "DNS label"),
        ({"name": "a" * 41}, "at most 40 characters"),
        ({"model": "resnet"}, "model must be one of basic, augmented, edge"),
        ({"workers": 0}, "workers must be an integer in 1..64, got 0"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"port": 70000}, "port must be an integer in 1..65535"),
        ({"image": "deepclf train"}, "Docker image reference"),
        ({"data_subdir": "a/b"}, "one plain folder name"),
        ({"run": "x y"}, "one plain folder name"),
        ({"runs_size": "5GB"}, "size such as '1Gi'"),
        ({"memory_mib": 100}, "memory_mib must be an integer >= 512"),
        ({"model_name": "flowers/1"}, "model_name must be letters"),
    ],
)
def test_options_are_validated(kwargs, fragment):
    with pytest.raises(UsageError, match=re.escape(fragment)):
        TrainingOptions(**kwargs)


def test_storage_options_are_validated():
    with pytest.raises(UsageError, match="access mode must be one of ReadWriteMany, ReadOnlyMany, ReadWriteOnce"):
        StorageOptions(access_mode="RWX")
    with pytest.raises(UsageError, match="storage class must be"):
        StorageOptions(storage_class="Fast_NFS")


# ------------------------------------------------------------------------------------------ CLI and image


def test_cli_writes_refuses_to_overwrite_and_forces(tmp_path, capsys):
    out = tmp_path / "training"
    assert main(["deploy", "training", "--out", str(out), "--workers", "3", "--epochs", "5", "--name", "fl"]) == 0
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == set(render_training(TrainingOptions(name="fl", workers=3, epochs=5)))
    stdout = capsys.readouterr().out
    assert "fl-0.fl-workers:2222, fl-1.fl-workers:2222, fl-2.fl-workers:2222" in stdout
    assert main(["deploy", "training", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err and "Traceback" not in err
    assert main(["deploy", "training", "--out", str(out), "--force", "--workers", "2"]) == 0


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--workers", "0"], "workers must be an integer in 1..64, got 0"),
        (["--name", "Flowers"], "name must be a Kubernetes DNS label"),
        (["--access-mode", "ReadWriteOnce", "--storage-class", "Bad_Class"], "storage class must be"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path, capsys, argv, fragment):
    assert main(["deploy", "training", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_rejects_unknown_choices_with_argparse_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["deploy", "training", "--out", str(tmp_path), "--model", "resnet"])
    assert info.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_training_dockerfile_references():
    train = DEPLOYMENT / "train"
    dockerfile = (train / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert froms and all(re.fullmatch(r"python:3\.\d+\.\d+-slim", f) for f in froms)
    assert '"deep-image-classification[tf]"' in dockerfile
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("tensorflow") for dep in extras["tf"])
    ignore = {line.rstrip("/") for line in (train / "Dockerfile.dockerignore").read_text().splitlines()}
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.M):
        for item in src.split():
            assert (REPO / item).exists(), item
            assert f"!{item.rstrip('/')}" in ignore, item
    # the port the workers listen on is the one the manifests use by default
    exposed = re.search(r"^EXPOSE (\d+)$", dockerfile, flags=re.M)
    assert exposed, dockerfile
    assert exposed[1] == str(TrainingOptions().port)
    assert "HOME=/tmp" in dockerfile  # read-only root filesystem: caches go to the /tmp emptyDir


def test_readme_gives_the_commands_in_order():
    readme = render_training(TrainingOptions(name="flowers-basic"))["README.md"]
    order = [
        "kubectl apply -k storage/",
        "kubectl apply -f files-pod.yaml",
        "kubectl cp ../shared/data/flower_photos",
        "kubectl apply -k tfjob/",
        "kubectl apply -k indexed-job/",
        "kubectl cp deepclf-train-files:/runs/flowers-basic runs/flowers-basic",
        "deepclf convert runs/",
        "kubectl apply -f convert-job.yaml",
        "deepclf deploy edge models",
    ]
    positions = [readme.index(step) for step in order]
    assert positions == sorted(positions)
