"""`deepclf deploy edge`: every reference in the bundle against the options and the real edge server.

Ports and flags go through `deepclf serve`'s own parser, probe paths through the server's real REST app, the
models.config through the server's own config reader; schemas are checked in test_validate.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepclf.cli import main
from deepclf.deploy.common import StorageOptions
from deepclf.deploy.edge import (
    IMAGE_UID,
    LIVENESS_PATH,
    MEASURED_RSS_MIB,
    READINESS_PATH,
    EdgeOptions,
    memory_mib,
    memory_request_mib,
    render_edge,
    served_count,
)
from deepclf.deploy.tfserving import scan_models
from deepclf.errors import UsageError
from tests.deploy.conftest import DEPLOYMENT, example, parse


def _docs(models, **kwargs) -> dict[str, dict]:
    return parse(render_edge(models, EdgeOptions(**kwargs)))


def _pod(docs: dict[str, dict]) -> dict:
    return docs["k8s/deployment.yaml"]["spec"]["template"]


def _container(docs: dict[str, dict]) -> dict:
    (container,) = _pod(docs)["spec"]["containers"]
    return container


def test_ports_and_flags_match_the_servers_own_parser(models):
    from deepclf.serving.cli import build_serve_args, config_from_args

    docs = _docs(models, grpc_port=9500, rest_port=9501, format="int8", threads=3, enable_batching=True)
    container = _container(docs)
    assert container["command"][:2] == ["deepclf", "serve"]
    config = config_from_args(build_serve_args(container["command"][2:]))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (config.port, config.rest_api_port) == (ports["grpc"], ports["http"]) == (9500, 9501)
    assert config.host == "0.0.0.0" and config.format == "int8" and config.threads == 3 and config.enable_batching
    # Services target the named container ports, and expose the same numbers
    for rel in ("k8s/service.yaml", "k8s/service-headless.yaml"):
        svc_ports = {p["name"]: (p["port"], p["targetPort"]) for p in docs[rel]["spec"]["ports"]}
        assert svc_ports == {"grpc": (9500, "grpc"), "http": (9501, "http")}, rel
    # probes use the named http port, which is the REST port the server binds
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    assert _pod(docs)["metadata"]["annotations"]["prometheus.io/port"] == "9501"


def test_models_config_is_mounted_where_the_flag_points_and_the_server_reads_it(models):
    from deepclf.serving.modelconfig import model_configs_from_message, parse_model_server_config

    docs = _docs(models)
    container, pod = _container(docs), _pod(docs)
    flag = container["command"][container["command"].index("--model_config_file") + 1]
    folder, name = flag.rsplit("/", 1)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts["config"]["mountPath"] == folder and mounts["config"]["readOnly"] is True
    cm = docs["k8s/configmap.yaml"]
    assert volumes["config"]["configMap"]["name"] == cm["metadata"]["name"]
    configs = model_configs_from_message(parse_model_server_config(cm["data"][name]))
    assert sorted(c.name for c in configs) == sorted(m.name for m in models)
    assert all(c.base_path.startswith(mounts["models"]["mountPath"] + "/") for c in configs)
    assert mounts["models"]["readOnly"] is True
    assert volumes["models"]["persistentVolumeClaim"] == {
        "claimName": docs["k8s/pvc.yaml"]["metadata"]["name"],
        "readOnly": True,
    }


async def test_probe_paths_are_real_routes_of_the_edge_server():
    import httpx
    from starlette.routing import Route

    from deepclf.serving.rest import create_app

    state = {"ready": False}
    # Only the route table is read: no request reaches the core or the metrics, so neither is made.
    app = create_app(None, None, ready=lambda: state["ready"], max_body_bytes=1024, access_log=False)  # type: ignore[arg-type]
    paths = {route.path for route in app.routes if isinstance(route, Route)}
    assert {LIVENESS_PATH, READINESS_PATH} <= paths
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as client:
        assert (await client.get(LIVENESS_PATH)).status_code == 200  # alive while models load
        assert (await client.get(READINESS_PATH)).status_code == 503  # not ready until every model is AVAILABLE
        state["ready"] = True
        assert (await client.get(READINESS_PATH)).status_code == 200


def test_probes_ready_on_readyz_alive_on_healthz(models):
    container = _container(_docs(models))
    assert container["startupProbe"]["httpGet"]["path"] == READINESS_PATH
    assert container["readinessProbe"]["httpGet"]["path"] == READINESS_PATH
    assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH
    # liveness is lenient: a minute of failures before a restart
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 60 and live["timeoutSeconds"] >= 5


def test_labels_selectors_and_autoscaler_line_up(models):
    docs = _docs(models, name="flowers-edge", min_replicas=2, max_replicas=6)
    dep, hpa = docs["k8s/deployment.yaml"], docs["k8s/hpa.yaml"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= _pod(docs)["metadata"]["labels"].items()
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    for rel in ("k8s/service.yaml", "k8s/service-headless.yaml"):
        assert docs[rel]["spec"]["selector"] == selector, rel
    assert docs["k8s/service.yaml"]["spec"]["type"] == "ClusterIP"
    assert docs["k8s/service-headless.yaml"]["spec"]["clusterIP"] == "None"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "flowers-edge"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    # the files pod mounts the same claim but is selected by nothing
    files = docs["files-pod.yaml"]
    assert not selector.items() <= files["metadata"]["labels"].items()
    assert files["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == docs["k8s/pvc.yaml"]["metadata"]["name"]
    kust = docs["k8s/kustomization.yaml"]
    assert sorted(kust["resources"]) == sorted(
        rel.removeprefix("k8s/") for rel in docs if rel.startswith("k8s/") and not rel.endswith("kustomization.yaml")
    )


def test_memory_follows_the_measurement(models, tmp_path):
    # the example serves 3 versions (flowers_basic 1 and 2, flowers_augmented 1)
    assert served_count(models, EdgeOptions()) == 3
    request, limit = memory_mib(models, EdgeOptions())
    assert request >= MEASURED_RSS_MIB[3] * 1.15 and limit >= request + 256
    res = _container(_docs(models))["resources"]
    assert res["requests"]["memory"] == f"{request}Mi" and res["limits"]["memory"] == f"{limit}Mi"
    assert res["requests"]["cpu"] == res["limits"]["cpu"] == "2"
    # one version: the measured RSS (docs/results/2026-11-30-memory.md) fits the request with room to spare
    one = scan_models(example.make_fake_models_tree(tmp_path / "one", {"flowers": (1,)}))
    assert memory_mib(one, EdgeOptions()) == (memory_request_mib(1), 512) == (192, 512)
    assert memory_request_mib(1) >= MEASURED_RSS_MIB[1] * 1.2
    assert memory_mib(models, EdgeOptions(memory_request_mib=256, memory_limit_mib=300)) == (256, 300)
    text = render_edge(models, EdgeOptions())["k8s/deployment.yaml"]
    assert "1 version 150 MiB" in text and "3 versions 266 MiB" in text  # the measurement is stated beside it


def test_security_context_and_the_images_user(models):
    dockerfile = (DEPLOYMENT / "edge" / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, flags=re.M)
    assert user and int(user[1]) == int(user[2]) == IMAGE_UID
    docs = _docs(models)
    for what, pod in (("deployment", _pod(docs)["spec"]), ("files pod", docs["files-pod.yaml"]["spec"])):
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["fsGroup"] == IMAGE_UID, what
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, what
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, what
    # SIGTERM drain fits in the termination grace period, after the preStop pause
    pod = _pod(docs)["spec"]
    grace = int(_container(docs)["command"][_container(docs)["command"].index("--grace_seconds") + 1])
    pause = int(_container(docs)["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > grace + pause


@pytest.mark.parametrize("mode", ["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce"])
def test_access_modes(models, mode):
    docs = _docs(models, storage=StorageOptions(access_mode=mode))
    assert docs["k8s/pvc.yaml"]["spec"]["accessModes"] == [mode]
    pod = _pod(docs)
    if mode == "ReadWriteOnce":
        (term,) = pod["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    else:
        assert "affinity" not in pod["spec"]


def test_readme_client_snippet_builds_a_round_robin_client(models):
    from deepclf.clients import GrpcClient

    readme = render_edge(models, EdgeOptions())["README.md"]
    call = re.search(r'client = (GrpcClient\("deepclf-edge-headless:8500", options=\[.*\]\))', readme)
    assert call, "the README shows the headless round-robin client"
    client = eval(call[1], {"GrpcClient": GrpcClient})  # our own README line
    try:
        assert client.targets == ("deepclf-edge-headless:8500",)
        assert ("grpc.lb_policy_name", "round_robin") in client._options
    finally:
        client.close()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"format": "savedmodel"}, "no savedmodel"),
        ({"grpc_port": 8501}, "must differ"),
        ({"threads": 0}, "threads must be an integer in 1..64"),
        ({"memory_request_mib": 512, "memory_limit_mib": 256}, "must be >= memory_request_mib"),
        ({"min_replicas": 3, "max_replicas": 2}, "must be >= min_replicas"),
        ({"name": "edge_1"}, "DNS label"),
        ({"models_size": "1GB"}, "size such as"),
    ],
)
def test_options_are_validated(kwargs, fragment):
    with pytest.raises(UsageError, match=re.escape(fragment)):
        EdgeOptions(**kwargs)


def test_cli_writes_and_reports(models_dir, tmp_path, capsys):
    out = tmp_path / "edge"
    assert main(["deploy", "edge", str(models_dir), "--out", str(out), "--threads", "4"]) == 0
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == set(render_edge(scan_models(models_dir), EdgeOptions(threads=4)))
    assert "3 versions per replica; memory 320Mi request, 640Mi limit" in capsys.readouterr().out
    assert main(["deploy", "edge", str(models_dir), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["deploy", "edge", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_generators_never_import_tensorflow(models_dir, tmp_path):
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from deepclf.cli import main\n"
        f"assert main(['deploy', 'edge', {str(models_dir)!r}, '--out', {str(tmp_path / 'e')!r}]) == 0\n"
        f"assert main(['deploy', 'training', '--out', {str(tmp_path / 't')!r}]) == 0\n"
        f"assert main(['deploy', 'tfserving', {str(models_dir)!r}, '--out', {str(tmp_path / 's')!r}]) == 0\n"
        "assert not any(m == 'tensorflow' or m.startswith('tensorflow.') for m in sys.modules if sys.modules[m])\n"
        "assert 'yaml' not in sys.modules, 'generation writes text; only validation reads YAML'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all((tmp_path / d / "README.md").is_file() for d in ("e", "t", "s"))


def test_committed_edge_example_points_at_the_edge_image():
    deployment = (DEPLOYMENT / "edge-k8s" / "k8s" / "deployment.yaml").read_text()
    assert 'image: "deepclf-edge:' in deployment
    assert Path(DEPLOYMENT / "edge" / "Dockerfile").is_file()
