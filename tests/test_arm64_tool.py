"""tools/arm64_root.py without emulation (``make test``): its refusals, what it reads from pyproject.toml, and the
board descriptions it gives the root. The root itself is exercised by ``make test-arm64`` (tests/arm64/)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.scripts import load_script

tool = load_script("tools/arm64_root.py")
REPO = Path(__file__).resolve().parents[1]


def test_without_root_it_refuses_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool.os, "geteuid", lambda: 1000)  # the one way to be non-root in a root test run
    with pytest.raises(tool.SetupError, match=r"needs root \(debootstrap, chroot and mounts\)"):
        tool.check_host()
    assert tool.main(["build"]) == 2


def test_without_binfmt_misc_it_refuses_saying_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tool, "BINFMT", tmp_path / "binfmt_misc")  # not mountable: a plain folder's subfolder
    with pytest.raises(tool.SetupError, match="binfmt_misc is not available"):
        tool.ensure_binfmt()


def test_the_root_gets_pyprojects_edge_and_test_requirements() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    edge, test = tool.pyproject_requirements()
    assert edge == extras["edge"]
    assert [tool._req_name(r) for r in test] == list(tool.TEST_PACKAGES)
    assert all(r in extras["dev"] for r in test)
    assert not any("tensorflow" in r for r in edge + test)
    assert tool.deps_key(edge, test) != tool.deps_key([*edge, "extra"], test)  # a changed extra rebuilds the venv


@pytest.mark.parametrize("name", sorted(tool.DEVICES))
def test_board_descriptions_are_what_cpuinfo_reads(name: str, tmp_path: Path) -> None:
    dev = tool.DEVICES[name]
    text = dev.proc_cpuinfo()
    assert text.count("CPU architecture: 8") == dev.cores and text.count("CPU implementer\t: 0x41") == dev.cores
    assert f"CPU part\t: 0x{dev.midr[2]:03x}" in text
    dev.write_sysfs(tmp_path)
    cpu = tmp_path / "devices" / "system" / "cpu"
    assert (cpu / "possible").read_text() == f"0-{dev.cores - 1}\n" == (cpu / "present").read_text()
    l2 = cpu / "cpu1" / "cache" / "index2"
    assert (l2 / "level").read_text() == "2\n" and (l2 / "size").read_text() == f"{dev.l2_kb}K\n"
    assert (l2 / "shared_cpu_list").read_text() == (f"0-{dev.cores - 1}\n" if dev.l2_shared else "1\n")


def test_the_checkout_copy_leaves_venvs_and_ignored_files_out() -> None:
    files = tool.checkout_files()
    assert "pyproject.toml" in files and "tools/arm64_root.py" in files and "src/deepclf/cli.py" in files
    assert not any(f.startswith((".venv/", ".git/")) or "__pycache__" in f for f in files)
