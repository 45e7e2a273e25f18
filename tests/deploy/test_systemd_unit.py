"""deployment/systemd/deepclf-serve.service: what a Raspberry Pi user copies to /etc/systemd/system (docs/arm64.md).

Checked here: the keys the guide promises (a non-root user, restart on failure, a read-only file system with the
model folder read-only too, a private /tmp), ``deepclf serve``'s own parser accepts the ExecStart line and its
model path is under the read-only folder, and ``systemd-analyze verify`` finds nothing to say (skipped without
systemd). ``make test-arm64`` runs the same ExecStart line in the arm64 root as this unit would
(tests/arm64/test_serve_x86_clients.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deepclf.serving.cli import build_serve_args
from tests.deploy.systemd import UNIT, exec_start, unit_sections


def test_the_service_runs_unprivileged_restarts_and_reads_only() -> None:
    service = unit_sections()["Service"]
    assert service["User"] not in ("", "root", "0") and service["Group"] == service["User"]
    assert service["Restart"] == "on-failure"
    assert service["ProtectSystem"] == "strict" and service["PrivateTmp"] == "yes"
    assert service["NoNewPrivileges"] == "yes" and service["CapabilityBoundingSet"] == ""
    # /sys must stay readable: LiteRT's CPU detection reads it (docs/arm64.md); ProtectKernelTunables keeps it so
    assert "TemporaryFileSystem" not in service and "InaccessiblePaths" not in service
    assert unit_sections()["Install"]["WantedBy"] == "multi-user.target"


def test_exec_start_is_a_deepclf_serve_line_its_parser_accepts() -> None:
    argv = exec_start()
    assert argv[0] == "/opt/deepclf/bin/deepclf" and argv[1] == "serve"
    args = build_serve_args(argv[2:])
    assert (args.port, args.rest_api_port, args.format) == (8500, 8501, "int8")
    read_only = unit_sections()["Service"]["ReadOnlyPaths"].split()
    assert any(Path(args.model_base_path).is_relative_to(p) for p in read_only), (args.model_base_path, read_only)


def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("needs systemd-analyze (systemd)")
    # verify checks that ExecStart's program exists; /opt/deepclf is the board's venv, so stand in /bin/true
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/deepclf/bin/deepclf", "/bin/true"))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr
