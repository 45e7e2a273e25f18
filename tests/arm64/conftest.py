"""``make test-arm64``: the edge on arm64, in an emulated Debian bookworm root (tools/arm64_root.py), held to the
answers of this x86 host.

These tests run on the host (TensorFlow available: the session's model is trained and converted here, as a user
converts on a workstation) and drive the root: ``pip install '.[edge]'`` from a copy of the checkout, the edge
test subset inside it (tests/arm64/test_edge_suite.py), per-variant parity against x86, and the x86 clients
(the official TF Serving stubs among them) against ``deepclf serve`` running there. Every module is marked
``arm64``; tests/conftest.py collects this folder only when ``-m`` names that marker. Without root or binfmt_misc
they fail, saying why (never skip: ``make test-arm64`` was asked for).

Figures worth keeping (install time and size, the parity table, the server's RSS) are printed at the end of the
run (``arm64_report``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import shared_data_dir
from tests.prebuilt import export_prebuilt
from tests.scripts import load_script

#: Where things go inside the root.
CHECKOUT = "/root/deepclf"
PREBUILT = "/root/prebuilt"
SHARED_DATA = "/root/shared-data"

#: Lines for the end of the run: (heading, lines).
REPORT: list[tuple[str, list[str]]] = []


def report(heading: str, lines: list[str]) -> None:
    REPORT.append((heading, lines))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    for heading, lines in REPORT:
        terminalreporter.section(heading, sep="-")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def arm64_tool() -> ModuleType:
    return load_script("tools/arm64_root.py")


@pytest.fixture(scope="session")
def arm64_cache(arm64_tool: ModuleType) -> Any:
    """The cached root, built if missing or stale (``make test-arm64`` builds it first, showing progress)."""
    cache = arm64_tool.Cache(arm64_tool.default_cache_dir())
    try:
        stamp = arm64_tool.build(cache)
    except arm64_tool.SetupError as exc:
        pytest.fail(f"the arm64 root cannot be set up: {exc}", pytrace=False)
    size = stamp["edge_install"]
    report(
        "arm64 root",
        [
            f"cache {cache.path}; Python {stamp['python']} (aarch64, Debian {arm64_tool.SUITE})",
            f"pip install '.[edge]' into a fresh venv: +{size['added_mb']:.0f} MB over the venv's own "
            f"{size['fresh_venv_mb']:.0f} MB (pip, setuptools), {size['pip_install_s']:.0f} s when the root was built",
        ],
    )
    return cache


@pytest.fixture(scope="session")
def prebuilt(
    tmp_path_factory: pytest.TempPathFactory, gen_photos: Path, shared_version_dir: Path, half_plus_two_tflite: bytes
) -> Path:
    """The session's photos and converted model, made here on x86 with TensorFlow, for the root (no TF there)."""
    return export_prebuilt(
        tmp_path_factory.mktemp("arm64") / "prebuilt",
        gen_photos=gen_photos,
        version_dir=shared_version_dir,
        half_plus_two=half_plus_two_tflite,
    )


@pytest.fixture(scope="session")
def half_plus_two_tflite() -> bytes:
    from tests.serving.conftest import build_half_plus_two

    return build_half_plus_two()


@pytest.fixture(scope="session")
def edge_root(arm64_tool: ModuleType, arm64_cache: Any, prebuilt: Path) -> Iterator[Any]:
    """A session on the root as a Raspberry Pi 4 (``pi4``), with the project installed by ``pip install '.[edge]'``
    from a copy of this checkout (its ``src/`` removed afterwards, so everything runs the installed package), the
    prebuilt models in /root/prebuilt and the real mini photos, when present, in /root/shared-data."""
    with arm64_tool.Session(arm64_cache, device="pi4") as session:
        with tempfile.TemporaryDirectory() as tmp:
            arm64_tool.copy_checkout(Path(tmp) / "src")
            session.put(Path(tmp) / "src", CHECKOUT)
        session.put(prebuilt, PREBUILT)
        data = shared_data_dir()
        if data is not None:
            session.put(data / "flower_photos_mini", f"{SHARED_DATA}/flower_photos_mini")
        t0 = time.monotonic()
        proc = session.run(["pip", "install", "--disable-pip-version-check", ".[edge]"], cwd=CHECKOUT, timeout=900)
        install_s = time.monotonic() - t0
        assert proc.returncode == 0, (
            f"pip install '.[edge]' failed in the arm64 root:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
        session.run(["rm", "-rf", f"{CHECKOUT}/src"], check=True)
        report("arm64 install", [f"pip install '.[edge]' of this checkout (dependencies cached): {install_s:.0f} s"])
        yield session


@pytest.fixture(scope="session")
def parity_photos(gen_photos: Path) -> tuple[Path, list[str]]:
    """(folder, relative paths): the 200 real mini photos when present, else the 200 generated ones."""
    data = shared_data_dir()
    root = data / "flower_photos_mini" if data is not None else gen_photos
    files = sorted(str(p.relative_to(root)) for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert len(files) >= 100, f"{root}: {len(files)} photos"
    return root, files
