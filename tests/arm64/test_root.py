"""The root is what a Raspberry Pi OS 64-bit user has (aarch64 Debian bookworm, Python 3.11), ``[edge]`` installs
there without TensorFlow, and LiteRT's CPU detection behaves as tools/arm64_root.py's docstring says: with the
board's /proc/cpuinfo and /sys it applies XNNPACK; without /sys it cannot detect the CPU and runs without
XNNPACK; with the host's /sys beside qemu's x86 /proc/cpuinfo it crashes (an emulation artefact)."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from .conftest import PREBUILT, report

pytestmark = pytest.mark.arm64

EM_AARCH64 = 183  # ELF e_machine


def test_the_root_is_aarch64_bookworm_with_python_311(edge_root: Any) -> None:
    proc = edge_root.run(
        ["python", "-c", "import platform; print(platform.machine(), platform.python_version())"], check=True
    )
    machine, version = proc.stdout.split()
    assert machine == "aarch64" and version.startswith("3.11."), proc.stdout
    assert edge_root.host_path("/etc/debian_version").read_text().startswith("12.")
    # LiteRT's native library is an aarch64 build (the wheel pip picked), not something that happens to import
    found = edge_root.run(
        ["sh", "-c", "ls /opt/edge/lib/python3*/site-packages/ai_edge_litert/*.so | head -1"], check=True
    ).stdout.strip()
    header = edge_root.host_path(found).read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and struct.unpack("<H", header[18:20])[0] == EM_AARCH64, found


def test_edge_install_has_no_tensorflow_and_the_cli_runs(edge_root: Any) -> None:
    freeze = edge_root.run(["pip", "freeze", "--all"], check=True).stdout.lower()
    for name in ("tensorflow", "keras", "tensorflow-serving-api", "tf-keras"):
        assert f"\n{name}==" not in f"\n{freeze}", name
    assert "deep-image-classification" in freeze and "ai-edge-litert==" in freeze
    proc = edge_root.run(["deepclf", "predict", "--help"], check=True)
    assert "usage: deepclf predict" in proc.stdout


PROBE = (
    "import numpy as np; from ai_edge_litert.interpreter import Interpreter; "
    f"it = Interpreter(model_path='{PREBUILT}/models/flowers/1/model_int8.tflite', num_threads=2); "
    "it.allocate_tensors(); d = it.get_input_details()[0]; "
    "it.set_tensor(d['index'], np.full(d['shape'], 100, d['dtype'])); it.invoke(); print('ran')"
)


@pytest.mark.parametrize("device", ["pi4", "pi5", "none", "host-sys"])
def test_litert_cpu_detection_per_device(edge_root: Any, device: str) -> None:
    """pi4/pi5: XNNPACK applied, cpuinfo silent. none (no /sys): cpuinfo fails, no XNNPACK, still runs.
    host-sys (the host's /sys, qemu's x86 /proc/cpuinfo): a segmentation fault while creating the interpreter."""
    proc = edge_root.run(["python", "-c", PROBE], device=device, timeout=300)
    err = proc.stderr
    xnnpack = "XNNPACK delegate" in err
    report("arm64: LiteRT's CPU detection", [f"{device}: exit {proc.returncode}, XNNPACK {'yes' if xnnpack else 'no'}"])
    if device in ("pi4", "pi5"):
        assert proc.returncode == 0 and "ran" in proc.stdout, err
        assert xnnpack and "Error in cpuinfo" not in err, err
    elif device == "none":
        assert proc.returncode == 0 and "ran" in proc.stdout, err
        assert "failed to parse both lists of possible and present processors" in err and not xnnpack, err
    else:
        assert proc.returncode == -11 or proc.returncode == 139, (
            f"the host-/sys crash is gone (exit {proc.returncode}): update docs/arm64.md and tools/arm64_root.py\n{err}"
        )
