"""Benchmarks: latency/throughput scenarios and accuracy parity over models in every format and transport.

    from deepclf.bench import run_latency, run_parity, quick_report, LatencyOptions
    report = run_latency(["tflite:models/flowers/1?variant=int8"], LatencyOptions(duration=5))
    print(report.table())

Names are imported lazily so that ``deepclf --help`` stays fast; nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_latency": "deepclf.bench.latency",
    "LatencyOptions": "deepclf.bench.latency",
    "LatencyReport": "deepclf.bench.latency",
    "sample_images": "deepclf.bench.latency",
    "run_parity": "deepclf.bench.parity",
    "ParityImages": "deepclf.bench.parity",
    "ParityReport": "deepclf.bench.parity",
    "Thresholds": "deepclf.bench.parity",
    "quick_report": "deepclf.bench.quick",
    "Target": "deepclf.bench.targets",
    "FunctionTarget": "deepclf.bench.targets",
    "Batch": "deepclf.bench.targets",
    "parse_target": "deepclf.bench.specs",
    "ScenarioConfig": "deepclf.bench.scenarios",
    "run_scenario": "deepclf.bench.scenarios",
    "percentile": "deepclf.bench.stats",
    "summarize": "deepclf.bench.stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deepclf.bench' has no attribute {name!r}")
