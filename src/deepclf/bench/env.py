"""The machine a benchmark ran on: CPU model and ISA flags, cores, Python and library versions.

Numbers without their environment cannot be compared, so every report embeds ``environment()``::

    env = environment()
    env["cpu"]["model"], env["cpu"]["flags"]     # 'AMD EPYC 7B13', ['avx', 'avx2', 'fma', ...]
    env["libraries"]["ai-edge-litert"]           # '2.3.0'

TensorFlow's version is read from its distribution metadata, never by importing it (that takes seconds and the
edge install has no TensorFlow).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any

from deepclf import __version__

#: Distributions whose versions a report lists (absent ones are left out).
LIBRARIES = (
    "numpy",
    "pillow",
    "ai-edge-litert",
    "tensorflow",
    "keras",
    "grpcio",
    "protobuf",
    "orjson",
    "httpx",
    "starlette",
    "uvicorn",
    "tensorflow-serving-api",
)

#: The ISA flags that decide which kernels XNNPACK and TensorFlow pick.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "sve",
    "i8mm",
    "bf16",
    "neon",
)


def cpu_info() -> dict[str, Any]:
    """CPU model, the interesting ISA flags, logical cores and the cores this process may use."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and val.strip():
                    model = val.strip()
                elif key in ("flags", "features"):
                    flags.update(val.split())
    except OSError:
        pass  # not Linux: the platform module's answer stands
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "model": model,
        "arch": platform.machine(),
        "flags": [f for f in ISA_FLAGS if f in flags],
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
    }


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` (distribution metadata only; nothing is imported)."""
    out: dict[str, str] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def _meminfo_total() -> int | None:
    """``MemTotal`` from ``/proc/meminfo`` in bytes (Linux without psutil); None elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):  # "MemTotal:  16318412 kB"
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def environment() -> dict[str, Any]:
    """Everything a report records about where it ran."""
    mem = None
    try:
        import psutil  # optional: the bench extra

        mem = int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - memory is a nice-to-have column
        mem = _meminfo_total()
    return {
        "host": socket.gethostname(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "deepclf": __version__,
        "cpu": cpu_info(),
        "memory_bytes": mem,
        "libraries": library_versions(),
    }


def describe(env: dict[str, Any]) -> str:
    """One line for terminal reports: ``AMD EPYC 7B13 (2/2 cores; avx2 fma), Python 3.11, LiteRT 2.3.0``."""
    cpu = env.get("cpu", {})
    libs = env.get("libraries", {})
    flags = " ".join(f for f in cpu.get("flags", []) if f.startswith(("avx", "amx", "asimd", "sve", "fma")))
    parts = [
        f"{cpu.get('model', '?')} ({cpu.get('usable_cores')}/{cpu.get('logical_cores')} cores; {flags or 'no AVX'})"
    ]
    parts.append(f"Python {env.get('python')}")
    for key, label in (("numpy", "numpy"), ("ai-edge-litert", "LiteRT"), ("tensorflow", "TF"), ("grpcio", "grpcio")):
        if key in libs:
            parts.append(f"{label} {libs[key]}")
    return ", ".join(parts)
