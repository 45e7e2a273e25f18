"""x86 and arm64 give the same answers: every LiteRT variant's probabilities for a fixed set of photos, computed
here and inside the arm64 root by the same script (parity_probe.py: deepclf's decode, resize and runner), as a
Raspberry Pi 4 and as a Pi 5 (XNNPACK picks its kernels by core), with the same top-1 for every photo.

The photos: the 200 real mini photos when the shared data is present, else the 200 generated ones. The model:
the session's converted flowers model (tests/conftest.py), all four variants.

Tolerances (max |dp| over all photos and classes, on the softmax probabilities), each from what was measured
(docs/arm64.md has the table and its command) and why the two machines differ at all:

* input tensor: exact. Pillow's JPEG decoder and the numpy resize give the same pixels on both.
* fp32 and fp16 (XNNPACK runs the fp16 model's arithmetic in fp32 on both): 1e-5; measured 1.4e-6 and 2.1e-6.
  XNNPACK's NEON and AVX kernels accumulate the same products in a different order, with fused multiply-adds:
  a few float32 ulps per layer.
* dynamic (int8 weights, activations quantized on the fly): 1e-3; measured 6.6e-7 (Pi 4) and 5.5e-5 (Pi 5,
  whose dot-product instructions take XNNPACK to other int8 kernels); the conversion's own fp32-to-dynamic
  difference is ~1e-2, so this is noise beside it.
* int8: one output step, 1/256; measured 0 (integer kernels with the same requantization are exact).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import PREBUILT, report

pytestmark = pytest.mark.arm64

PROBE = Path(__file__).with_name("parity_probe.py")
VARIANTS = ("fp32", "fp16", "dynamic", "int8")
TOLERANCE = {"fp32": 1e-5, "fp16": 1e-5, "dynamic": 1e-3, "int8": 1 / 256}
DEVICES = ("pi4", "pi5")
PHOTOS_IN_ROOT = "/root/parity-photos"

RESULTS: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def photo_list(parity_photos: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parity") / "photos.txt"
    path.write_text("\n".join(parity_photos[1]) + "\n")
    return path


@pytest.fixture(scope="module")
def x86(parity_photos: tuple[Path, list[str]], photo_list: Path, shared_version_dir: Path) -> Any:
    out = photo_list.with_name("x86.npz")
    proc = subprocess.run(
        [sys.executable, str(PROBE), str(shared_version_dir), str(parity_photos[0]), str(photo_list), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


@pytest.fixture(scope="module")
def arm64_inputs(edge_root: Any, parity_photos: tuple[Path, list[str]], photo_list: Path) -> None:
    edge_root.put(parity_photos[0], PHOTOS_IN_ROOT)
    edge_root.put(photo_list, "/root/parity-photos.txt")
    edge_root.put(PROBE, "/root/parity_probe.py")


@pytest.mark.parametrize("device", DEVICES)
def test_every_variant_agrees_with_x86(edge_root: Any, arm64_inputs: None, x86: Any, device: str) -> None:
    out = f"/root/parity-{device}.npz"
    argv = ["python", "/root/parity_probe.py", f"{PREBUILT}/models/flowers/1", PHOTOS_IN_ROOT]
    proc = edge_root.run([*argv, "/root/parity-photos.txt", out], device=device, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    arm = np.load(edge_root.host_path(out))
    assert str(arm["machine"]) == "aarch64" and str(x86["machine"]) != "aarch64"
    assert bool(arm["xnnpack"]) and bool(x86["xnnpack"]), "XNNPACK was not applied on both: not what a board runs"
    n = len(x86["input"])
    row: dict[str, Any] = {"photos": n, "input_max_dx": float(np.abs(arm["input"] - x86["input"]).max())}
    for v in VARIANTS:
        dp = np.abs(arm[v] - x86[v])
        row[v] = {
            "max_dp": float(dp.max()),
            "top1_agree": int((arm[v].argmax(1) == x86[v].argmax(1)).sum()),
        }
    RESULTS[device] = row
    assert row["input_max_dx"] == 0.0, f"the preprocessed pixels differ between x86 and arm64 ({row['input_max_dx']})"
    for v in VARIANTS:
        assert row[v]["max_dp"] <= TOLERANCE[v], f"{device} {v}: max |dp| {row[v]['max_dp']:.3g} > {TOLERANCE[v]:.3g}"
        assert row[v]["top1_agree"] == n, f"{device} {v}: top-1 differs on {n - row[v]['top1_agree']} of {n} photos"


def test_parity_table(parity_photos: tuple[Path, list[str]]) -> None:
    """The table for docs/arm64.md (printed at the end of the run); runs after the comparisons."""
    if set(RESULTS) != set(DEVICES):
        pytest.skip("a comparison above failed or did not run")
    n = RESULTS[DEVICES[0]]["photos"]
    lines = [
        f"{n} photos from {parity_photos[0]}; input tensor max |dx| "
        + ", ".join(f"{d} {RESULTS[d]['input_max_dx']:g}" for d in DEVICES),
        "| variant | max abs dp, Pi 4 (A72) | max abs dp, Pi 5 (A76) | top-1 agreement | tolerance |",
        "|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        cells = [f"{RESULTS[d][v]['max_dp']:.2g}" for d in DEVICES]
        agree = min(RESULTS[d][v]["top1_agree"] for d in DEVICES)
        lines.append(f"| {v} | {cells[0]} | {cells[1]} | {agree}/{n} | {TOLERANCE[v]:.2g} |")
    report("arm64: parity with x86 (LiteRT variants)", lines)
