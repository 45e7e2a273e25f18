#!/usr/bin/env python3
"""Where a served request's time goes: py-spy samples of ``deepclf serve`` (default flags) under one client.

For each path (REST row tensor, REST b64 image, gRPC tensor_content, gRPC image bytes) it starts the server on a
converted model version, drives it from a separate process with one client sending back to back (prebuilt
request bytes, so the client's own work is small and stays out of the server's process), samples the server with
``py-spy record`` and prints a table per path: requests/s under the sampler, and the share of the server's busy
samples (every thread, idle waits left out) spent in the frames that matter, inclusive::

    pip install py-spy
    python benchmarks/profile.py --version-dir models/flowers/1                     # all four paths, 15 s each
    python benchmarks/profile.py --version-dir models/flowers/1 --path rest-rows --seconds 20 --out /tmp/prof

``--out`` keeps each path's raw collapsed stacks (``<path>.txt``, flamegraph.pl / speedscope input) and the
tables (``profile.md``). The sampler slows the server down (it stops it to read each stack), so compare the
shares, not the requests/s, with latency figures measured without it. docs/results/2026-11-30-profiles.md keeps
the tables from before and after the optimisations (the same command at both commits).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))  # run from a checkout without installing

from deepclf.bench.process import free_port, serve_command, stop_process, wait_available
from deepclf.manifest import Manifest

PATHS = ("rest-rows", "rest-b64", "grpc-tensor", "grpc-bytes")

#: Frames reported, by what they stand for (matched against ``function (file)``), in this order.
FRAMES: tuple[tuple[str, str], ...] = (
    ("HTTP: uvicorn/h11 parsing and writing", r"\((uvicorn|h11)/"),
    ("HTTP: Starlette routing and middleware", r"\(starlette/"),
    ("REST body read", r"^read_body "),
    ("REST decode (JSON -> arrays)", r"^(decode_predict_request|ServingCore\.decode_rest) "),
    ("  simdjson fast path", r"^fast_predict_request "),
    ("REST encode (arrays -> JSON)", r"^encode_predict_response "),
    ("gRPC library (C-core polling, dispatch)", r"\(grpc/_server\.py\)$"),
    ("gRPC handler (ours, all of it)", r"^_handler\.<locals>\._answer "),
    ("Predict request -> arrays (protocol)", r"^(ServingCore\.admit_tensors|to_ndarray) "),
    ("Predict response <- arrays (protocol)", r"^to_tensor_proto "),
    ("image decode + resize (preprocessing)", r"^Runner\._decode_bytes "),
    ("  bilinear resize", r"^_bilinear "),
    ("inference: LiteRT invoke", r"^(SignatureRunner\.__call__|Interpreter\.invoke) "),
    ("worker pool hand-off (futures)", r"^(Future\.set_result|Future\.result|ThreadPoolExecutor\.submit) "),
    ("metrics and access log", r"^ServerMetrics\.record "),
)

#: Frames that are a thread waiting, not working: samples whose innermost frame matches are left out.
IDLE = re.compile(
    r"^(EpollSelector\.select|_worker|Condition\.wait|Event\.wait|_serve|select|wait|_wait_once|sleep) "
    r"|\(threading\.py\)$"
)


def py_spy() -> str:
    """py-spy from PATH, or beside this Python (a venv's bin, when the venv is not activated); "" if absent."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.is_file() else "")


_DRIVER = r"""
import base64, json, sys, time, http.client
kind, rest_port, grpc_port, model, seconds, image_path, height, width = sys.argv[1:9]
import numpy as np
x = np.random.default_rng(0).uniform(0, 255, (1, int(height), int(width), 3)).astype(np.float32)
photo = open(image_path, "rb").read()
end = time.perf_counter() + float(seconds)
n = 0
if kind.startswith("rest"):
    if kind == "rest-rows":
        body = json.dumps({"instances": x.tolist()}).encode()
    else:
        body = json.dumps({"signature_name": "predict_image_bytes",
                           "instances": [{"image_bytes": {"b64": base64.b64encode(photo).decode()}}]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", int(rest_port))
    headers = {"Content-Type": "application/json"}
    while time.perf_counter() < end:
        conn.request("POST", f"/v1/models/{model}:predict", body, headers)
        r = conn.getresponse(); r.read(); assert r.status == 200, r.status
        n += 1
else:
    import grpc
    from deepclf import protocol as P
    req = P.PredictRequest(); req.model_spec.name = model
    if kind == "grpc-tensor":
        req.inputs["image"].CopyFrom(P.to_tensor_proto(x))
    else:
        req.model_spec.signature_name = "predict_image_bytes"
        t = req.inputs["image_bytes"]; t.dtype = 7; t.string_val.append(photo); t.tensor_shape.dim.add(size=1)
    data = req.SerializeToString()
    call = grpc.insecure_channel(f"127.0.0.1:{grpc_port}").unary_unary(
        "/tensorflow.serving.PredictionService/Predict")
    while time.perf_counter() < end:
        call(data, timeout=30); n += 1
print(n)
"""


def _wait_available(rest_port: int, model: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    error = wait_available(proc, rest_port, model, timeout=timeout, poll_interval=0.2)
    if error is not None:
        raise SystemExit(f"deepclf serve, model {model!r}: {error}")


def summarize(collapsed: Path) -> tuple[int, list[tuple[str, float]]]:
    """(busy samples, [(label, % of busy samples)]) of a py-spy ``--format raw`` file."""
    busy = 0
    hits: collections.Counter[str] = collections.Counter()
    patterns = [(label, re.compile(rx)) for label, rx in FRAMES]
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r"\s*\(([^()]*?):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        if not frames or IDLE.search(frames[-1]):
            continue
        n = int(count)
        busy += n
        for label, rx in patterns:
            if any(rx.search(f) for f in frames):
                hits[label] += n
    return busy, [(label, 100.0 * hits[label] / busy if busy else 0.0) for label, _ in FRAMES]


def profile_path(kind: str, version: Path, seconds: float, out: Path, image: Path, rate: int) -> str:
    model = version.parent.name
    size = Manifest.load(version).input.shape[:2]
    rest_port, grpc_port = free_port(), free_port()
    serve = serve_command(model, version.parent, grpc_port, rest_port)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    with open(out / f"{kind}.serve.log", "w") as log:
        proc = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_available(rest_port, model, proc)
        driver = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, kind, str(rest_port), str(grpc_port), model, str(seconds + 3), str(image)]
            + [str(d) for d in size],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        time.sleep(2.0)  # warm-up: connections, first calls, interpreter allocation
        raw = out / f"{kind}.txt"
        spy = [py_spy(), "record", "-p", str(proc.pid), "-d", str(int(seconds)), "-r", str(rate), "-f", "raw"]
        subprocess.run([*spy, "-o", str(raw)], check=True, capture_output=True)
        requests = int(driver.communicate(timeout=seconds + 60)[0].strip() or 0)
    finally:
        stop_process(proc, timeout=30.0)
    busy, rows = summarize(raw)
    lines = [
        f"#### {kind}: {requests / (seconds + 3):.0f} req/s under the sampler, {busy} busy samples",
        "",
        "| frames (inclusive) | share of busy samples |",
        "|---|---|",
    ]
    lines += [f"| {label} | {share:.1f}% |" for label, share in rows if share >= 0.05]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--version-dir", required=True, help="a converted model version folder (manifest.json, .tflite)")
    p.add_argument("--path", action="append", choices=PATHS, help="which paths (default: all four)")
    p.add_argument("--seconds", type=float, default=15.0, help="sampling time per path (default 15)")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default 200)")
    p.add_argument("--image", default=None, help="the JPEG the image paths send (default: a 320x240 sample)")
    p.add_argument("--out", default=None, help="keep raw stacks and profile.md here (default: a temporary folder)")
    args = p.parse_args(argv)
    if not py_spy():
        p.error("py-spy is not installed: pip install py-spy")
    version = Path(args.version_dir).resolve()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="deepclf-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    image = Path(args.image) if args.image else out / "sample.jpg"
    if not args.image:
        from deepclf.bench.latency import sample_images

        image.write_bytes(sample_images(None, n=1)[0])
    git = shutil.which("git") or "git"
    commit = subprocess.run(
        [git, "rev-parse", "--short", "HEAD"], check=False, cwd=REPO, capture_output=True, text=True
    )
    head = f"Profile of `deepclf serve` at {commit.stdout.strip() or '?'}, {time.strftime('%Y-%m-%d %H:%M')}"
    sections = [head, ""]
    for kind in args.path or PATHS:
        table = profile_path(kind, version, args.seconds, out, image, args.rate)
        print(table + "\n", flush=True)
        sections += [table, ""]
    (out / "profile.md").write_text("\n".join(sections))
    print(f"raw stacks and profile.md in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
