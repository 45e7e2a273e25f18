"""Benchmarks: latency/throughput scenarios and accuracy parity over models in every format and transport.

    from deepclf.bench import run_latency, run_parity, quick_report, LatencyOptions
    report = run_latency(["tflite:models/flowers/1?variant=int8"], LatencyOptions(duration=5))
    print(report.table())

Names are imported lazily so that ``deepclf --help`` stays fast; nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from deepclf.bench.latency import LatencyOptions, LatencyReport, run_latency, sample_images
    from deepclf.bench.parity import ParityImages, ParityReport, Thresholds, run_parity
    from deepclf.bench.quick import quick_report
    from deepclf.bench.scenarios import ScenarioConfig, run_scenario
    from deepclf.bench.specs import parse_target
    from deepclf.bench.stats import percentile, summarize
    from deepclf.bench.targets import Batch, FunctionTarget, Target

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

__all__ = [
    "Batch",
    "FunctionTarget",
    "LatencyOptions",
    "LatencyReport",
    "ParityImages",
    "ParityReport",
    "ScenarioConfig",
    "Target",
    "Thresholds",
    "parse_target",
    "percentile",
    "quick_report",
    "run_latency",
    "run_parity",
    "run_scenario",
    "sample_images",
    "summarize",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deepclf.bench' has no attribute {name!r}")
