#!/usr/bin/env python3
"""The README's model table from one command: train each model with its default schedule, convert it, measure it.

For each model (default: basic, augmented, edge), in order:

1. ``deepclf train --model M --data DATA --out WORK/runs/M`` with no other flag (the default schedule), timed from
   the outside: wall seconds of the whole command (start-up, decoding the photos, every epoch, the final evaluation
   and the plots), the CPU seconds it used, and the load average of the machine while it ran (sampled every 5 s:
   other processes slow training down, and the page says how busy the machine was);
2. ``deepclf convert WORK/runs/M --out WORK/models --name flowers_M --parity-images 100000 --calibration-steps 200``:
   SavedModel + the four LiteRT variants, each checked against Keras on the whole validation split (so every
   variant's accuracy is measured on all of it);
3. then, for all models together, single-stream latency of every LiteRT variant in process (``deepclf.bench``; the
   bare ``tflite:`` runner on preprocessed tensors, the runtime's default threads), in ``--rounds`` interleaved
   rounds of ``--seconds`` each, so a burst of other work on the machine hits every model alike; a variant's p50 is
   the median of its rounds' p50s.

Writes the dated results page ``docs/results/<date>-models/`` (``index.md``: the table, the edge model's goals, the
environment, the edge run's curves and confusion matrix; ``models.json``: every number), lists it in
``docs/results/index.md`` and in the site's ``nav`` (``mkdocs.yml``), and rewrites the table in README.md between its
``models:start``/``models:end`` markers::

    python benchmarks/models.py --data ../shared/data/flower_photos          # ~1 h on 2 quiet cores
    python benchmarks/models.py --data ... --models edge --no-readme        # one model, README untouched
    python benchmarks/models.py --data ... --reuse                          # keep finished runs, measure again

``--reuse`` keeps runs and conversions already in ``--work`` (their training times are the ones recorded when they
were trained, in ``WORK/runs/M/benchmark_train.json``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))  # run from a checkout without installing

from deepclf.bench.env import describe, environment
from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
from deepclf.fsutil import atomic_write_json, atomic_write_text
from deepclf.variants import VARIANT_NAMES

MODELS = ("basic", "augmented", "edge")
MARK_START = "<!-- models:start -->"
MARK_END = "<!-- models:end -->"
#: The edge model's goals (issue 24): accuracy, size, int8 fidelity and latency, training time.
GOAL_ACCURACY = 0.80
GOAL_INT8_BYTES = 2_000_000
GOAL_INT8_POINTS = 0.01
GOAL_TRAIN_SECONDS = 25 * 60


def log(msg: str) -> None:
    print(f"[models {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class LoadSampler:
    """The 1-minute load average every ``every`` seconds while a block runs (a background thread)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples = every, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {
            "min": min(self.samples),
            "mean": statistics.fmean(self.samples),
            "max": max(self.samples),
            "samples": len(self.samples),
        }


def deepclf(*args: str) -> None:
    """Run a ``deepclf`` subcommand in a child process (its output streams through); raise if it fails."""
    log("$ deepclf " + " ".join(args))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-m", "deepclf.cli", *args], check=True, env=env)


def train(model: str, data: Path, work: Path, reuse: bool, epochs: int | None = None) -> dict[str, Any]:
    """Train with the default schedule (or reuse a finished run); the timing of the command."""
    run = work / "runs" / model
    timing_file = run / "benchmark_train.json"
    if reuse and (run / "model.keras").is_file() and timing_file.is_file():
        log(f"{model}: reusing {run}")
        return json.loads(timing_file.read_text())
    if run.exists():
        shutil.rmtree(run)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    extra = ["--epochs", str(epochs)] if epochs else []
    with LoadSampler() as load:
        deepclf("train", "--model", model, "--data", str(data), "--out", str(run), *extra)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = {
        "command": " ".join(["deepclf train --model", model, "--data", str(data), "--out", str(run), *extra]),
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "load_average": load.summary(),
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(timing_file, timing)
    return timing


def convert(model: str, work: Path, reuse: bool) -> Path:
    """Convert into WORK/models/flowers_<model>/1 (or reuse it); the version folder."""
    version = work / "models" / f"flowers_{model}" / "1"
    if reuse and (version / "conversion_report.json").is_file():
        return version
    deepclf(
        "convert",
        str(work / "runs" / model),
        "--out",
        str(work / "models"),
        "--name",
        f"flowers_{model}",
        "--version",
        "1",
        "--force",
        "--parity-images",
        "100000",
        "--calibration-steps",
        "200",
    )
    return version


def latencies(versions: dict[str, Path], data: Path, rounds: int, seconds: float) -> dict[str, dict[str, Any]]:
    """p50/p90 per model and variant: ``rounds`` interleaved rounds; p50 = the median of the rounds' p50s."""
    images = sample_images(data, n=8)
    specs = {(m, v): f"tflite:{versions[m]}?variant={v}" for m in versions for v in VARIANT_NAMES}
    per: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in specs}
    info: dict[tuple[str, str], dict[str, Any]] = {}
    for r in range(rounds):
        log(f"latency round {r + 1}/{rounds}: {len(specs)} targets x {seconds:g} s")
        report = run_latency(
            list(specs.values()),
            LatencyOptions(scenarios=("single-stream",), duration=seconds, warmup=20, quiet=True),
            images=images,
        )
        for key, target in zip(specs, report.targets, strict=True):
            if target.status != "ok":
                raise RuntimeError(f"{target.spec}: {target.error}")
            lat = target.results[0].latency
            per[key].append((lat.p50, lat.p90))
            info[key] = target.info
    return {
        f"{m}/{v}": {
            "p50_ms": statistics.median(p for p, _ in per[(m, v)]),
            "p90_ms": statistics.median(p for _, p in per[(m, v)]),
            "rounds_p50_ms": [p for p, _ in per[(m, v)]],
            "threads": info[(m, v)].get("threads"),
        }
        for (m, v) in specs
    }


def collect(model: str, work: Path, timing: dict[str, Any], version: Path) -> dict[str, Any]:
    run = work / "runs" / model
    metrics = json.loads((run / "metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    report = json.loads((version / "conversion_report.json").read_text())
    return {
        "model": model,
        "val_accuracy": metrics["val_accuracy"],
        "validation_images": sum(map(sum, metrics["confusion_matrix"])),
        "params": metrics.get("params"),
        "epochs": metrics["epochs"],
        "img_size": config["img_size"],
        "batch_size": config["batch_size"],
        "seconds_per_epoch": metrics["seconds_per_epoch"],
        "train": timing,
        "keras_bytes": report["keras"]["size_bytes"],
        "variants": {
            v: {
                "size_bytes": e["size_bytes"],
                "accuracy": e["parity"].get("accuracy"),
                "top1_agreement": e["parity"]["top1_agreement"],
                "ops": e.get("ops"),
            }
            for v, e in report["variants"].items()
        },
    }


def goals(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The edge model's goals, judged on this run's numbers (``n/a`` when a model was not measured)."""
    edge, basic = rows.get("edge"), rows.get("basic")
    if edge is None:
        return []
    int8, fp32 = edge["variants"]["int8"], edge["variants"]["fp32"]
    out = [
        ("validation accuracy >= 0.80", f"{edge['val_accuracy']:.3f}", edge["val_accuracy"] >= GOAL_ACCURACY),
        ("int8 model <= 2 MB", f"{int8['size_bytes'] / 1e6:.2f} MB", int8["size_bytes"] <= GOAL_INT8_BYTES),
        (
            "int8 top-1 within 1 point of fp32",
            f"{int8['accuracy']:.3f} vs {fp32['accuracy']:.3f}",
            abs(int8["accuracy"] - fp32["accuracy"]) <= GOAL_INT8_POINTS + 1e-9,
        ),
        (
            "default schedule trains in <= 25 min",
            f"{edge['train']['wall_s'] / 60:.1f} min (load {edge['train']['load_average']['mean']:.1f})",
            edge["train"]["wall_s"] <= GOAL_TRAIN_SECONDS,
        ),
    ]
    if basic is not None:
        e, b = edge["latency"]["int8"]["p50_ms"], basic["latency"]["int8"]["p50_ms"]
        out.append(("int8 p50 <= basic CNN's int8 p50", f"{e:.2f} vs {b:.2f} ms", e <= b))
    return [{"goal": g, "measured": m, "met": bool(ok)} for g, m, ok in out]


def _fmt_size(n: int) -> str:
    return f"{n / 1e6:.1f}" if n >= 1e6 else f"{n / 1e6:.2f}"


def table(rows: dict[str, dict[str, Any]]) -> str:
    """The README's model table (markdown): one row per model, the four variants in each cell."""
    variants = " / ".join(VARIANT_NAMES)
    lines = [
        f"| model | validation accuracy | parameters | size {variants} | LiteRT p50 {variants} | "
        "int8 accuracy | training time |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, r in rows.items():
        sizes = " / ".join(_fmt_size(r["variants"][v]["size_bytes"]) for v in VARIANT_NAMES)
        p50 = " / ".join(f"{r['latency'][v]['p50_ms']:.2f}" for v in VARIANT_NAMES)
        int8 = r["variants"]["int8"].get("accuracy")
        t = r["train"]
        h, w = r["img_size"]
        lines.append(
            f"| `{m}` ({h}x{w}, {r['epochs']} epochs) | {r['val_accuracy']:.1%} | {r['params']:,} | {sizes} MB | "
            f"{p50} ms | {'' if int8 is None else f'{int8:.1%}'} | "
            f"{t['wall_s'] / 60:.1f} min (load {t['load_average']['mean']:.1f}) |"
        )
    return "\n".join(lines)


def summary(rows: dict[str, dict[str, Any]], page: dict[str, Any]) -> str:
    """The dated results page (docs/results/<date>-models/index.md)."""
    g = page["goals"]
    goal_lines = "\n".join(f"| {x['goal']} | {x['measured']} | {'met' if x['met'] else '**missed**'} |" for x in g)
    lat = page["latency"]
    per_variant = "\n".join(
        f"| `{m}` | "
        + " | ".join(
            f"{r['variants'][v]['accuracy']:.1%} ({r['variants'][v]['top1_agreement']:.1%})"
            if r["variants"][v].get("accuracy") is not None
            else ""
            for v in VARIANT_NAMES
        )
        + f" | {r['train']['cpu_s'] / 60:.1f} min | {r['seconds_per_epoch']:.0f} s |"
        for m, r in rows.items()
    )
    edge_plots = (
        "\n| curves | confusion matrix |\n|---|---|\n| ![edge curves](edge_curves.png) | "
        "![edge confusion](edge_confusion.png) |\n"
        if "edge" in rows
        else ""
    )
    return f"""# {page["date"]}: the model table (basic, augmented, edge)

```sh
{page["command"]}
```

Commit {page["commit"]}; {page["environment_line"]}. Validation: the {page["validation_images"]} photos of the 80/20
split (seed 123) of `{page["data"]}`, which no model trains on. Validation accuracy is the Keras model's on all of
them. p50: single-stream latency in process (`tflite:` runner, {lat["threads"]} threads, preprocessed tensors),
median of {lat["rounds"]} interleaved rounds of {lat["seconds"]:g} s. Training time: wall time of the whole
`deepclf train` command with default flags (start-up, decoding the photos, every epoch, the final evaluation, the
plots) and, in brackets, the machine's mean 1-minute load average while it ran (2 cores: above 2, other work shared
them and the time is longer than on a quiet machine).

{table(rows)}

Accuracy of each variant on the same photos (and its top-1 agreement with the Keras model), measured by
`deepclf convert --parity-images 100000`, and the training command's CPU time and seconds per epoch:

| model | {" | ".join(VARIANT_NAMES)} | training CPU | per epoch |
|---|{"---|" * len(VARIANT_NAMES)}---|---|
{per_variant}

## The edge model's goals

| goal | measured | |
|---|---|---|
{goal_lines}
{edge_plots}
Raw numbers: [models.json](models.json).
"""


def update_readme(readme: Path, rows: dict[str, dict[str, Any]], page: dict[str, Any], rel: str) -> None:
    """Rewrite the README's model table between its markers (``rel``: the results page, relative to the README)."""
    text = readme.read_text(encoding="utf-8")
    if MARK_START not in text or MARK_END not in text:
        raise SystemExit(f"{readme} has no {MARK_START} ... {MARK_END} section to fill")
    body = (
        f"{table(rows)}\n\n```sh\n{page['command']}     # trains the three, converts, measures: this table\n```\n\n"
        f"Measured {page['date']} on {page['environment_line']}: [results page]({rel}) (the edge model's goals, "
        "each variant's accuracy, the training curves)."
    )
    start, end = text.index(MARK_START) + len(MARK_START), text.index(MARK_END)
    atomic_write_text(readme, text[:start] + "\n" + body + "\n" + text[end:])


def list_page(results_index: Path, mkdocs: Path, page_rel: str, date: str) -> None:
    """List the results page in docs/results/index.md and in mkdocs.yml's nav (``make check`` fails on a page
    missing from nav), once."""
    line = f"- [{date}: the model table: basic, augmented, edge]({page_rel})"
    if results_index.is_file():
        text = results_index.read_text(encoding="utf-8")
        if f"({page_rel})" not in text:
            anchor = "## Other runs\n"
            head, sep, rest = text.partition(anchor)
            if sep:  # the list follows the section's first paragraph
                para, blank, items = rest.partition("\n\n")
                text = head + sep + para + blank + line + "\n" + items
            else:
                text = text.rstrip() + "\n" + line + "\n"
            atomic_write_text(results_index, text)
    if mkdocs.is_file():
        text = mkdocs.read_text(encoding="utf-8")
        entry = f"      - {date} model table: results/{page_rel}\n"
        anchor = "      - results/index.md\n"
        if f"results/{page_rel}" not in text and anchor in text:
            atomic_write_text(mkdocs, text.replace(anchor, anchor + entry, 1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="the flowers photos (default: DEEPCLF_DATA or ../shared/data/...)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated (default {','.join(MODELS)})")
    p.add_argument("--work", default=str(HERE / "work" / "models"), help="runs and converted models go here")
    p.add_argument("--out", default=None, help="results folder (default docs/results/<date>-models)")
    p.add_argument("--reuse", action="store_true", help="keep finished runs and conversions in --work")
    p.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds (default 3)")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per latency measurement (default 5)")
    p.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    p.add_argument("--readme", default=str(REPO / "README.md"), help=argparse.SUPPRESS)  # tests: a copy
    p.add_argument(
        "--epochs", type=int, default=None, help="override every model's schedule (a quick check: not the table's)"
    )
    args = p.parse_args(argv)

    data = Path(args.data or os.environ.get("DEEPCLF_DATA") or REPO.parent / "shared" / "data" / "flower_photos")
    if not data.is_dir():
        raise SystemExit(f"no photos at {data}: pass --data PATH (a folder of class sub-folders)")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    work = Path(args.work)
    env = environment()
    date = time.strftime("%Y-%m-%d")
    out = Path(args.out or REPO / "docs" / "results" / f"{date}-models")
    git = shutil.which("git")
    commit = (
        subprocess.run(
            [git, "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
        if git
        else "unknown"
    )
    log(f"{describe(env)}; models {', '.join(models)}; work {work}; results {out}")

    timings, versions = {}, {}
    for m in models:
        timings[m] = train(m, data, work, args.reuse, args.epochs)
        log(f"{m}: trained in {timings[m]['wall_s'] / 60:.1f} min (load {timings[m]['load_average']['mean']:.1f})")
        versions[m] = convert(m, work, args.reuse)
    lat = latencies(versions, data, args.rounds, args.seconds)
    rows = {m: collect(m, work, timings[m], versions[m]) for m in models}
    for m in models:
        rows[m]["latency"] = {v: lat[f"{m}/{v}"] for v in VARIANT_NAMES}
    threads = {x["threads"] for x in lat.values()}
    command = "python benchmarks/models.py" + ("" if args.data is None else f" --data {args.data}")
    if args.models != ",".join(MODELS):
        command += f" --models {args.models}"
    if args.epochs:
        command += f" --epochs {args.epochs}"
    if args.reuse:  # the runs kept from an earlier invocation carry their own training times (models.json)
        command += " --reuse"
    page = {
        "date": date,
        "commit": commit,
        "command": command,
        "data": str(data),
        "validation_images": next(iter(rows.values()))["validation_images"],
        "environment": env,
        "environment_line": describe(env),
        "latency": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            # None: LiteRT chooses (the runner's default, as deepclf serve runs it)
            "threads": "the runtime's default" if threads == {None} else ", ".join(map(str, sorted(threads, key=str))),
        },
        "models": rows,
    }
    page["goals"] = goals(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "models.json", page)
    atomic_write_text(out / "index.md", summary(rows, page))
    if "edge" in rows:
        for src, dst in (("curves.png", "edge_curves.png"), ("confusion_matrix.png", "edge_confusion.png")):
            shutil.copyfile(work / "runs" / "edge" / "plots" / src, out / dst)
    print(table(rows))
    for goal in page["goals"]:
        log(f"goal {goal['goal']}: {goal['measured']} -> {'met' if goal['met'] else 'MISSED'}")
    if not args.no_readme:
        readme = Path(args.readme)
        update_readme(readme, rows, page, os.path.relpath(out / "index.md", readme.parent))
        log(f"{readme}: model table updated")
        results = REPO / "docs" / "results"
        if out.parent == results:  # a page of the site: list it
            list_page(results / "index.md", REPO / "mkdocs.yml", f"{out.name}/index.md", date)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
