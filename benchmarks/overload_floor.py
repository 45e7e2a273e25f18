#!/usr/bin/env python3
"""How far overload latency can go on this machine: ``deepclf serve`` beside servers that do nothing at all.

The overload test (tests/serving/test_overload.py) holds ``deepclf serve --threads=2`` against 64 clients that send
predicts back to back, and the issue's goal is a served p99 under 10x the unloaded p99. This runs the same load
(``deepclf.bench.overload``: 64 closed-loop clients in 2 processes, no retries, 10 s) against three servers in turn,
for three client mixes (32 REST + 32 gRPC as in the test, 64 REST, 64 gRPC):

- ``deepclf serve`` on the model, default flags and ``--threads=2`` (``--no_access_log``, as in the test);
- a do-nothing server with the same layout: uvicorn (uvloop, httptools) for REST and a synchronous ``grpc.server``
  (16 threads) in one process, answering every predict with a fixed response, no model, no gate;
- a do-nothing server with the other layout Python offers: the same REST app, and ``grpc.aio`` on its event loop.

A do-nothing server's loaded p99 is a floor for any Python server on these libraries under this load: if it is
already over 10x ``deepclf serve``'s unloaded p99, the goal is out of reach for the serving code, whatever it
does. ::

    python benchmarks/overload_floor.py --model_base_path models/flowers          # ~3 min; a table on stdout
    python benchmarks/overload_floor.py --model_base_path models/flowers --out floor.json --mix mixed
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # run from a checkout without installing

from deepclf.bench.overload import percentile_ms, run_load, unloaded_latencies
from deepclf.bench.process import free_port, log_tail, serve_command, stop_process, wait_available
from deepclf.manifest import Manifest
from deepclf.versions import expected_layout, latest_version

MIXES = {"mixed": (32, 32), "rest": (64, 0), "grpc": (0, 64)}
UNLOADED_REQUESTS = 100

#: The do-nothing server: REST and gRPC on the given ports, every predict answered with a fixed response.
_NOTHING = r"""
import asyncio, sys
import grpc
import uvicorn
from concurrent import futures
from deepclf import protocol as P

layout, rest_port, grpc_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
REST_BODY = b'{"predictions": [[0.2, 0.2, 0.2, 0.2, 0.2]]}'
GRPC_BODY = P.PredictResponse().SerializeToString()
STATUS = b'{"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK"}}]}'

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, as a server must
        more = (await receive()).get("more_body", False)
    body = REST_BODY if scope["method"] == "POST" else STATUS
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})

def handler(fn):
    return grpc.method_handlers_generic_handler(
        P.PREDICTION_SERVICE, {"Predict": grpc.unary_unary_rpc_method_handler(fn)})

config = uvicorn.Config(app, host="127.0.0.1", port=rest_port, log_level="warning", access_log=False,
                        lifespan="off", http="httptools")
if layout == "sync":
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers([handler(lambda request, context: GRPC_BODY)])
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    server.start()
    uvicorn.Server(config).run()
else:
    async def main():
        async def predict(request, context):
            return GRPC_BODY
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([handler(predict)])
        server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        await server.start()
        await uvicorn.Server(config).serve()
    import uvloop
    uvloop.run(main())
"""

SERVERS = ("deepclf serve", "do-nothing, grpc.server", "do-nothing, grpc.aio")


def start(kind: str, base_path: Path, model: str, log: Any) -> tuple[subprocess.Popen, str, str]:
    rest_port, grpc_port = free_port(), free_port()
    if kind.startswith("deepclf serve"):
        flags = kind.removeprefix("deepclf serve").split()
        cmd = serve_command(model, base_path, grpc_port, rest_port, "--threads=2", "--no_access_log", *flags)
    else:
        layout = "sync" if kind.endswith("grpc.server") else "aio"
        cmd = [sys.executable, "-c", _NOTHING, layout, str(rest_port), str(grpc_port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    error = wait_available(proc, rest_port, model, timeout=120, poll_interval=0.2)
    if error is not None:
        stop_process(proc)
        raise RuntimeError(f"{kind}: {error}: {log_tail(log.name)}")
    return proc, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"


def measure(kind: str, mix: str, base_path: Path, model: str, size: tuple[int, int], seconds: float) -> dict:
    n_rest, n_grpc = MIXES[mix]
    # the server's log lives as long as it runs: a failed start quotes its tail
    with tempfile.NamedTemporaryFile("w", prefix="overload-floor-", suffix=".log") as log:
        proc, rest_url, grpc_target = start(kind, base_path, model, log)
        try:
            by_api = unloaded_latencies(rest_url, grpc_target, calls=UNLOADED_REQUESTS, model=model, size=size)
            unloaded = by_api["rest"] + by_api["grpc"]
            calls = run_load(
                rest_url, grpc_target, n_rest, n_grpc, seconds=seconds, processes=2, model=model, size=size
            )
        finally:
            stop_process(proc)
    ok = [c.seconds for c in calls if c.outcome == "ok"]
    return {
        "server": kind,
        "mix": mix,
        "unloaded_p99_ms": percentile_ms(unloaded, 99),
        "served_p50_ms": percentile_ms(ok, 50),
        "served_p99_ms": percentile_ms(ok, 99),
        "served": len(ok),
        "shed": sum(1 for c in calls if c.outcome == "shed"),
        "other": sum(1 for c in calls if c.outcome == "other"),
        "answers_per_s": len(calls) / seconds,
    }


def table(rows: list[dict]) -> str:
    """Markdown, each served p99 also as a multiple of ``deepclf serve``'s unloaded p99 in the same mix."""
    ours = {r["mix"]: r["unloaded_p99_ms"] for r in rows if r["server"] == "deepclf serve"}
    out = [
        "| clients | server | unloaded p99 | served p50 / p99 | served p99 / deepclf unloaded p99 | answers/s "
        "| served / shed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["served_p99_ms"] / ours[r["mix"]] if r["mix"] in ours else float("nan")
        n_rest, n_grpc = MIXES[r["mix"]]
        clients = " + ".join(f"{n} {api}" for n, api in ((n_rest, "REST"), (n_grpc, "gRPC")) if n)
        out.append(
            f"| {clients} | {r['server']} | {r['unloaded_p99_ms']:.2f} ms | {r['served_p50_ms']:.1f} / "
            f"{r['served_p99_ms']:.1f} ms | {ratio:.1f}x | {r['answers_per_s']:,.0f} | {r['served']:,} / {r['shed']:,} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model_base_path", required=True, type=Path, help="a model folder with version folders (1/, ...)")
    p.add_argument("--model_name", default="flowers")
    p.add_argument("--mix", nargs="+", choices=sorted(MIXES), default=list(MIXES))
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path, help="also write the rows as JSON")
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="FLAGS",
        help="one more deepclf serve row with these flags (space-separated), e.g. --also=--max_in_flight=4",
    )
    args = p.parse_args(argv)
    latest = latest_version(args.model_base_path)
    if latest is None:
        p.error(f"{args.model_base_path} holds no model version: {expected_layout(args.model_base_path)}")
    spec = Manifest.load(latest[1]).input
    size = (spec.height, spec.width)
    rows = []
    for mix in args.mix:
        for kind in (*SERVERS, *(f"deepclf serve {flags}" for flags in args.also)):
            rows.append(measure(kind, mix, args.model_base_path, args.model_name, size, args.seconds))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows))
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows, indent=2) + "\n")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
