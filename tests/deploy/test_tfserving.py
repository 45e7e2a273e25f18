"""`deepclf serving tfserving-config`: folder scan, rendering, cross-references, CLI behaviour, committed example.

TF Serving's own protos check the config files in test_tfserving_protos.py; the real container runs in
test_tfserving_docker.py where a Docker engine exists.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
import yaml

from deepclf.cli import main
from deepclf.deploy.common import StorageOptions
from deepclf.deploy.tfserving import TFServingOptions, render_bundle, scan_models, version_labels, write_bundle
from deepclf.deploy.tfserving.k8s import TFSERVING_UID, common_labels, config_checksum, selector_labels
from deepclf.deploy.tfserving.options import allowed_batch_sizes, served_versions
from deepclf.errors import ModelFormatError, UsageError
from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


example = load_script("deployment/regenerate_example.py")
make_tree = example.make_fake_models_tree


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "models", {"flowers_basic": (1, 2), "flowers_augmented": (1,)})


def _flags(args: list[str]) -> dict[str, str]:
    out = {}
    for a in args:
        m = re.fullmatch(r"--([a-z_]+)=(.*)", a)
        assert m, f"flag {a!r} is not --name=value"
        out[m[1]] = m[2]
    return out


def _models_config_names(text: str) -> list[str]:
    return re.findall(r'^\s*name: "([^"]+)"', text, flags=re.M)


# ----------------------------------------------------------------------------------------------------- scanning


def test_scan_takes_names_and_versions_from_the_folders(tmp_path):
    root = make_tree(tmp_path / "m", {"zeta-net": (10, 2, 9), "alpha.v2": (3,)})
    (root / ".alpha.partial-x").mkdir()  # publish_dir's temp folder: not a model
    (root / "notes.txt").write_text("x")
    (root / "zeta-net" / ".11.partial-abc").mkdir()  # a version being published: not a version yet
    (root / "zeta-net" / "tmp").mkdir()
    models = scan_models(root)
    assert [(m.name, m.versions) for m in models] == [("alpha.v2", (3,)), ("zeta-net", (2, 9, 10))]
    assert models[1].newest == 10  # numeric order, not string order ("9" > "10")
    assert models[1].manifest().labels == example.FLOWER_CLASSES


def test_scan_skips_odd_version_names_and_refuses_duplicates(tmp_path):
    root = make_tree(tmp_path / "m", {"flowers": (1,)})
    for odd in ("²", "٣", "-1", str(2**63)):  # not versions to TF Serving either: skipped, not fatal
        (root / "flowers" / odd).mkdir()
    assert [(m.name, m.versions) for m in scan_models(root)] == [("flowers", (1,))]
    shutil.copytree(root / "flowers" / "1", root / "flowers" / "001")  # TF Serving would load one, silently
    with pytest.raises(ModelFormatError, match=r"2 folders for version 1 \('001' and '1'\)"):
        scan_models(root)
    shutil.rmtree(root / "flowers" / "1")
    shutil.rmtree(root / "flowers" / "001")
    with pytest.raises(ModelFormatError, match=r"has no version folders; expected .*ASCII digits.*ignored: "):
        scan_models(root)


@pytest.mark.parametrize(
    "setup, error, fragment",
    [
        (lambda r: None, UsageError, "does not exist"),
        (lambda r: r.mkdir(), UsageError, "holds no models"),
        (lambda r: (r / "flowers").mkdir(parents=True), ModelFormatError, "has no version folders"),
        (lambda r: (r / "fl owers" / "1").mkdir(parents=True), ModelFormatError, "not usable as a TF Serving model"),
    ],
)
def test_scan_errors_say_what_is_wrong(tmp_path, setup, error, fragment):
    root = tmp_path / "models"
    setup(root)
    with pytest.raises(error, match=fragment) as info:
        scan_models(root)
    assert str(root) in str(info.value)


def test_scan_rejects_incomplete_versions(tmp_path):
    root = make_tree(tmp_path / "models", {"flowers": (1, 2)})
    (root / "flowers" / "2" / "saved_model.pb").unlink()
    with pytest.raises(ModelFormatError, match=r"flowers/2 has no saved_model.pb"):
        scan_models(root)
    make_tree(root, {"flowers": (2,)})
    (root / "flowers" / "1" / "manifest.json").unlink()
    with pytest.raises(ModelFormatError, match=r"flowers/1 has no manifest.json"):
        scan_models(root)


# ----------------------------------------------------------------------------------------------- labels, policy


def test_labels_and_served_versions(tmp_path):
    one, three = scan_models(make_tree(tmp_path / "m", {"a": (4,), "b": (1, 5, 7)}))
    assert version_labels(one) == {"stable": 4}
    assert version_labels(three) == {"stable": 5, "canary": 7}
    specific, every = TFServingOptions(), TFServingOptions(version_policy="all")
    assert served_versions(one, specific) == (4,)
    assert served_versions(three, specific) == (5, 7)  # exactly the labelled versions
    assert served_versions(three, every) == (1, 5, 7)
    for model in (one, three):
        for opts in (specific, every):
            assert set(version_labels(model).values()) <= set(served_versions(model, opts))


@pytest.mark.parametrize("max_size, expected", [(1, [1]), (32, [1, 2, 4, 8, 16, 32]), (24, [1, 2, 4, 8, 16, 24])])
def test_allowed_batch_sizes_increase_and_end_at_max(max_size, expected):
    assert allowed_batch_sizes(max_size) == expected


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"cpus": 0}, "cpus must be a positive integer, got 0"),
        ({"grpc_port": 8501}, "must differ"),
        ({"rest_port": 70000}, "got 70000"),
        ({"version_policy": "latest"}, "got 'latest'"),
        ({"name": "Bad_Name"}, "DNS-1123"),
        ({"image": "tensorflow/serving 2.19"}, "Docker image reference"),
        ({"min_replicas": 3, "max_replicas": 2}, "must be >= min_replicas"),
    ],
)
def test_options_are_validated(kwargs, fragment):
    with pytest.raises(UsageError, match=re.escape(fragment)):
        TFServingOptions(**kwargs)


# -------------------------------------------------------------------------------------------- docker-compose


def _compose(files: dict[str, str]) -> dict:
    return yaml.safe_load(files["docker-compose.yml"])


def test_compose_references_are_consistent(models_dir):
    opts = TFServingOptions(grpc_port=9000, rest_port=9001, cpus=3)
    files = render_bundle(scan_models(models_dir), opts)
    svc = _compose(files)["services"]["tfserving"]
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+", svc["image"]), "image must be pinned to a release"
    assert svc["entrypoint"] == ["tensorflow_model_server"]
    flags = _flags(svc["command"])
    # ports: the server's flags, the published container ports and the health check agree
    assert flags["port"] == "9000" and flags["rest_api_port"] == "9001"
    assert [p.rsplit(":", 1)[1] for p in svc["ports"]] == ["9000", "9001"]
    assert "/dev/tcp/127.0.0.1/9001" in svc["healthcheck"]["test"][-1]
    # every file flag points into a mounted folder, at a file the generator wrote
    mounts = {v["target"]: v for v in svc["volumes"]}
    assert all(v["read_only"] for v in mounts.values())
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        target_dir, name = flags[flag].rsplit("/", 1)
        source = mounts[target_dir]["source"]
        assert source.startswith("./"), "config folder must be relative to the compose file"
        assert f"{source[2:]}/{name}" in files
    # the models mount is where models.config's base paths live, and its source is MODELS_DIR-overridable
    models_config = files["config/models.config"]
    base_paths = re.findall(r'base_path: "([^"]+)"', models_config)
    names = _models_config_names(models_config)
    assert base_paths == [f"/models/{n}" for n in names] and "/models" in mounts
    assert mounts["/models"]["source"] == "${MODELS_DIR:-" + opts.models_host_path + "}"
    # the health check asks about every model in models.config, and nothing else
    assert sorted(re.findall(r"GET /v1/models/(\S+) ", svc["healthcheck"]["test"][-1])) == sorted(names)
    # batching/threads sized to the CPUs
    assert svc["deploy"]["resources"]["limits"]["cpus"] == "3"
    assert flags["tensorflow_intra_op_parallelism"] == "3"
    assert "num_batch_threads { value: 3 }" in files["config/batching_parameters.txt"]
    for flag in ("enable_batching", "enable_model_warmup", "allow_version_labels_for_unavailable_models"):
        assert flags[flag] == "true"
    assert int(flags["model_config_file_poll_wait_seconds"]) > 0


class _FakeStatusServer:
    """A loopback HTTP server answering /v1/models/<name> like TF Serving, with a state per model."""

    def __init__(self, states: dict[str, str]):
        states_ = states

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # http.server's naming
                name = self.path.removeprefix("/v1/models/")
                body: dict[str, object]
                if name not in states_:
                    body, code = {"error": f"Could not find any versions of model {name}"}, 404
                else:
                    body = {
                        "model_version_status": [
                            {
                                "version": "1",
                                "state": states_[name],
                                "status": {"error_code": "OK", "error_message": ""},
                            }
                        ]
                    }
                    code = 200
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.skipif(shutil.which("bash") is None, reason="the health check is a bash script; bash is not installed")
@pytest.mark.parametrize(
    "states, healthy",
    [
        ({"flowers_basic": "AVAILABLE", "flowers_augmented": "AVAILABLE"}, True),
        ({"flowers_basic": "AVAILABLE", "flowers_augmented": "LOADING"}, False),
        ({"flowers_basic": "AVAILABLE"}, False),  # flowers_augmented unknown: 404
    ],
)
def test_compose_healthcheck_runs_against_a_status_endpoint(models_dir, states, healthy):
    # Real bash, real HTTP on loopback; only the server behind the port is a stand-in for TF Serving (no Docker).
    with _FakeStatusServer(states) as server:
        files = render_bundle(scan_models(models_dir), TFServingOptions(rest_port=server.port))
        test = _compose(files)["services"]["tfserving"]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "bash", "-c"]
        rc = subprocess.run(["bash", "-c", test[3]], timeout=30, capture_output=True).returncode
    assert (rc == 0) is healthy


# -------------------------------------------------------------------------------------------------- kubernetes


@pytest.mark.skipif(shutil.which("bash") is None, reason="the probe is a bash script; bash is not installed")
@pytest.mark.parametrize(
    "states, ready",
    [
        ({"flowers_basic": "AVAILABLE", "flowers_augmented": "AVAILABLE"}, True),
        ({"flowers_basic": "LOADING", "flowers_augmented": "AVAILABLE"}, False),  # the first model alone is not enough
        ({"flowers_augmented": "AVAILABLE"}, False),
    ],
)
def test_k8s_readiness_probe_runs_against_a_status_endpoint(models_dir, states, ready):
    with _FakeStatusServer(states) as server:
        files = render_bundle(scan_models(models_dir), TFServingOptions(rest_port=server.port))
        (container,) = yaml.safe_load(files["k8s/deployment.yaml"])["spec"]["template"]["spec"]["containers"]
        rc = subprocess.run(container["readinessProbe"]["exec"]["command"], timeout=30, capture_output=True).returncode
    assert (rc == 0) is ready


@pytest.mark.parametrize("mode", ["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce"])
def test_k8s_models_claim_access_modes(models_dir, tmp_path, mode):
    out = tmp_path / "o"
    assert (
        main(
            [
                "serving",
                "tfserving-config",
                str(models_dir),
                "--out",
                str(out),
                "--access-mode",
                mode,
                "--storage-class",
                "nfs-client",
            ]
        )
        == 0
    )
    pvc = yaml.safe_load((out / "k8s" / "pvc.yaml").read_text())
    assert pvc["spec"]["accessModes"] == [mode] and pvc["spec"]["storageClassName"] == "nfs-client"
    dep = yaml.safe_load((out / "k8s" / "deployment.yaml").read_text())
    pod = dep["spec"]["template"]
    if mode == "ReadWriteOnce":  # one node at a time: the replicas are kept together
        (term,) = pod["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
    else:
        assert "affinity" not in pod["spec"]
    assert f"The models claim is {mode}" in (out / "README.md").read_text()
    assert TFServingOptions(storage=StorageOptions(access_mode=mode)).storage.access_mode == mode


def test_k8s_manifests_reference_each_other(models_dir):
    opts = TFServingOptions(name="flowers-prod", cpus=4, memory_mib=3072, min_replicas=2, max_replicas=6)
    files = render_bundle(scan_models(models_dir), opts)
    docs = {}
    helper = yaml.safe_load(files["files-pod.yaml"])
    assert helper["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == f"{opts.name}-models"
    assert not selector_labels(opts).items() <= helper["metadata"]["labels"].items(), "no Service selects it"
    for rel, text in files.items():
        if rel.startswith("k8s/"):
            loaded = list(yaml.safe_load_all(text))
            assert len(loaded) == 1, rel
            docs[rel.removeprefix("k8s/")] = loaded[0]
    kust = docs.pop("kustomization.yaml")
    assert sorted(kust["resources"]) == sorted(docs)
    by_kind = {d["kind"]: d for d in docs.values()}
    assert set(by_kind) == {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "HorizontalPodAutoscaler"}
    # one label set everywhere; selectors are its stable subset and select the pod template
    labels = common_labels(opts)
    for d in by_kind.values():
        assert d["metadata"]["labels"] == labels, d["kind"]
    dep, svc, hpa = by_kind["Deployment"], by_kind["Service"], by_kind["HorizontalPodAutoscaler"]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"] == selector_labels(opts) == svc["spec"]["selector"]
    assert selector_labels(opts).items() <= pod["metadata"]["labels"].items()
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    # ports: Service targets the container's named ports, which are the server's flags
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {"grpc": "grpc", "http": "http"}
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports == {"grpc": 8500, "http": 8501}
    flags = _flags(container["args"])
    assert container["command"] == ["tensorflow_model_server"]
    assert container["args"] == _compose(files)["services"]["tfserving"]["command"], "same flags as compose"
    assert (int(flags["port"]), int(flags["rest_api_port"])) == (ports["grpc"], ports["http"])
    # probes: startup and readiness ask the REST status of every model in models.config (the same bash check as
    # compose's health check, on the http port); liveness only needs the REST port to accept connections
    names = _models_config_names(files["config/models.config"])
    compose_check = _compose(files)["services"]["tfserving"]["healthcheck"]["test"]
    for probe in ("startupProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command == compose_check[1:]
        assert sorted(re.findall(r"GET /v1/models/(\S+) ", command[-1])) == sorted(names)
        assert f"/dev/tcp/127.0.0.1/{ports['http']}" in command[-1]
        assert container[probe]["timeoutSeconds"] >= 5
    assert container["livenessProbe"] == {
        "tcpSocket": {"port": "http"},
        "periodSeconds": 20,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    # never root: the image would run as root, so the pod sets a uid; read-only root filesystem, /tmp writable
    sc = pod["spec"]["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["fsGroup"] == TFSERVING_UID != 0
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # resources
    res = container["resources"]
    assert res["requests"] == res["limits"] == {"cpu": "4", "memory": "3072Mi"}
    # volumes: config from the ConfigMap (whose keys are the files the flags name), models from the PVC
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    cm, pvc = by_kind["ConfigMap"], by_kind["PersistentVolumeClaim"]
    assert volumes["config"]["configMap"]["name"] == cm["metadata"]["name"]
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert mounts.pop("tmp")["mountPath"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert all(m["readOnly"] for m in mounts.values())
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        folder, name = flags[flag].rsplit("/", 1)
        assert folder == mounts["config"]["mountPath"]
        assert cm["data"][name] == files[f"config/{name}"], "ConfigMap must carry the same text as config/"
    assert all(
        bp.startswith(mounts["models"]["mountPath"] + "/")
        for bp in re.findall(r'base_path: "([^"]+)"', cm["data"]["models.config"])
    )
    configs = {k: files[f"config/{k}"] for k in cm["data"]}
    assert pod["metadata"]["annotations"]["deepclf/config-sha256"] == config_checksum(configs)
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/monitoring/prometheus/metrics"
    # HPA scales this Deployment on CPU
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": dep["apiVersion"],
        "kind": "Deployment",
        "name": dep["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_config_change_changes_the_pod_checksum(tmp_path):
    one = render_bundle(scan_models(make_tree(tmp_path / "a", {"flowers": (1,)})), TFServingOptions())
    two = render_bundle(scan_models(make_tree(tmp_path / "b", {"flowers": (1, 2)})), TFServingOptions())
    sha = [
        yaml.safe_load(f["k8s/deployment.yaml"])["spec"]["template"]["metadata"]["annotations"]["deepclf/config-sha256"]
        for f in (one, two)
    ]
    assert sha[0] != sha[1]
    expected = hashlib.sha256()
    for name in sorted(("batching_parameters.txt", "models.config", "monitoring.config")):
        expected.update(name.encode() + b"\0" + one[f"config/{name}"].encode() + b"\0")
    assert sha[0] == expected.hexdigest()


def test_readme_calls_the_right_endpoints(models_dir):
    text = render_bundle(scan_models(models_dir), TFServingOptions())["README.md"]
    assert "docker compose up" in text
    assert "curl http://localhost:8501/v1/models/flowers_basic/metadata" in text
    assert "/monitoring/prometheus/metrics" in text
    assert "flowers_basic/labels/canary:predict" in text  # the example model is the one with a canary
    # the predict request line is a shell command that writes valid JSON with a b64 image
    line = next(ln for ln in text.splitlines() if ln.startswith("echo '"))
    image = "QUJD"  # what base64 of a 3-byte file prints
    script = line.replace("$(base64 -w0 daisy.jpg)", image).replace(" > request.json", "")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    body = json.loads(out)
    assert body == {"signature_name": "predict_image_bytes", "instances": [{"image_bytes": {"b64": image}}]}


# ----------------------------------------------------------------------------------------- CLI and writing


def test_cli_writes_refuses_to_overwrite_and_forces(models_dir, tmp_path, capsys):
    out = tmp_path / "deploy"
    assert main(["serving", "tfserving-config", str(models_dir), "--out", str(out)]) == 0
    written = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert set(written) == set(render_bundle(scan_models(models_dir), TFServingOptions()))
    assert "flowers_basic: versions 1,2; serving 1,2; labels stable=1, canary=2" in capsys.readouterr().out
    # compose sees the models folder relative to itself
    assert (
        _compose({"docker-compose.yml": written["docker-compose.yml"].decode()})["services"]["tfserving"]["volumes"][0][
            "source"
        ]
        == "${MODELS_DIR:-../models}"
    )

    (out / "config" / "models.config").write_text("edited by hand\n")
    assert main(["serving", "tfserving-config", str(models_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err and "config/models.config" in err
    assert "Traceback" not in err
    assert (out / "config" / "models.config").read_text() == "edited by hand\n"  # nothing was touched

    assert main(["serving", "tfserving-config", str(models_dir), "--out", str(out), "--force"]) == 0
    assert (out / "config" / "models.config").read_bytes() == written["config/models.config"]
    assert not [p for p in out.rglob(".*") if p.is_file()], "no temporary files left behind"


def test_cli_reports_bad_models_dir_without_traceback(tmp_path, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    assert main(["serving", "tfserving-config", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "holds no models" in err and str(empty) in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    assert main(["serving", "tfserving-config", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serving", "tfserving-config", str(empty), "--out", str(tmp_path / "o"), "--cpus", "0"]) == 2


def test_cli_options_reach_the_files(models_dir, tmp_path):
    out = tmp_path / "o"
    rc = main(
        [
            "serving",
            "tfserving-config",
            str(models_dir),
            "--out",
            str(out),
            "--version-policy",
            "all",
            "--image",
            "tensorflow/serving:2.19.0",
            "--max-batch-size",
            "16",
            "--models-host-path",
            "/srv/models",
        ]
    )
    assert rc == 0
    assert "model_version_policy { all {} }" in (out / "config" / "models.config").read_text()
    assert "max_batch_size { value: 16 }" in (out / "config" / "batching_parameters.txt").read_text()
    svc = yaml.safe_load((out / "docker-compose.yml").read_text())["services"]["tfserving"]
    assert svc["image"] == "tensorflow/serving:2.19.0"
    assert svc["volumes"][0]["source"] == "${MODELS_DIR:-/srv/models}"


def test_rendering_is_deterministic(tmp_path):
    a = render_bundle(scan_models(make_tree(tmp_path / "a", example.EXAMPLE_MODELS)), TFServingOptions())
    b = render_bundle(scan_models(make_tree(tmp_path / "b", example.EXAMPLE_MODELS)), TFServingOptions())
    assert a == b and list(a) == sorted(a)


def test_write_bundle_refuses_a_file_as_output(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        write_bundle(target, {"a.txt": "a"})


def test_generator_never_imports_tensorflow(models_dir, tmp_path):
    # With TensorFlow made unimportable, the whole command still works.
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from deepclf.cli import main\n"
        f"rc = main(['serving', 'tfserving-config', {str(models_dir)!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        "assert rc == 0, rc\n"
        "assert not any(m == 'tensorflow' or m.startswith('tensorflow.') for m in sys.modules if sys.modules[m])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "docker-compose.yml").is_file()


# ------------------------------------------------------------------------------------------- committed files


@pytest.mark.parametrize("folder", ["tfserving", "edge-k8s", "training-k8s"])
def test_committed_example_matches_the_generator(folder):
    committed_dir = example.HERE / folder
    committed = {
        p.relative_to(committed_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in committed_dir.rglob("*")
        if p.is_file()
    }
    rendered = example.render_all()[committed_dir]
    assert sorted(committed) == sorted(rendered), "run: .venv/bin/python deployment/regenerate_example.py"
    for rel, text in rendered.items():
        assert committed[rel] == text, f"{rel} is stale; run: .venv/bin/python deployment/regenerate_example.py"


def test_edge_dockerfile_references(tmp_path):
    edge = REPO / "deployment" / "edge"
    dockerfile = (edge / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert froms and all(re.fullmatch(r"python:3\.\d+\.\d+-slim", f) for f in froms)
    assert '"deep-image-classification[edge]"' in dockerfile
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "edge" in extras and not any("tensorflow" in dep for dep in extras["edge"])
    # what COPY takes from the context exists and is allowed by the .dockerignore allow-list
    ignore = (edge / "Dockerfile.dockerignore").read_text().splitlines()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.M):
        for item in src.split():
            assert (REPO / item).exists(), item
            assert f"!{item.rstrip('/')}" in {line.rstrip("/") for line in ignore}, item
    # the entrypoint is TF Serving's contract as a script (tests/deploy/test_edge_entrypoint.py runs it), no CMD
    found = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, flags=re.M)
    assert found and json.loads(found[1]) == ["/usr/bin/tf_serving_entrypoint.sh"], dockerfile
    assert not re.search(r"^CMD ", dockerfile, flags=re.M)
    assert "COPY deployment/edge/tf_serving_entrypoint.sh /usr/bin/tf_serving_entrypoint.sh" in dockerfile
