"""Micro-measurements quoted in the docs, each reproducible with one command.

    python benchmarks/micro.py rest-decode            # REST body decode: simdjson fast path vs the general parser
    python benchmarks/micro.py interpreter-memory M   # RSS of one LiteRT interpreter per batch size (M: a .tflite)
    python benchmarks/micro.py resize                 # the TF-exact bilinear resize of a 240x179 image to 180x180
    python benchmarks/micro.py preprocess             # decode + resize of a 320x240 JPEG to 180x180 (image contract)
    python benchmarks/micro.py grpc-floor             # a Python gRPC round trip that does nothing (echo server)
    python benchmarks/micro.py batch-rows M           # LiteRT time per image at batch 1, 2, 4, 8 (M: a .tflite)

Each prints one line per figure; timings are the mean of N runs after one warm-up (``--runs``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _mean_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - t0) / runs * 1e3


def rest_decode(runs: int) -> None:
    """The row request of one 180x180 float32 image (TF Serving's JSON, ~1.9 MB), decoded with the server's budget."""
    import orjson

    from deepclf.protocol import json_fast
    from deepclf.protocol.limits import RequestLimits
    from deepclf.protocol.rest import decode_predict_request

    x = (np.random.default_rng(0).random((1, 180, 180, 3)) * 255).astype(np.float32)
    body = orjson.dumps({"instances": x.tolist()})  # Python floats, as most clients write them: ~1.9 MB
    sig = {"image": "float32"}
    fast = _mean_ms(lambda: decode_predict_request(body, sig, budget=RequestLimits().budget()), runs)
    saved, json_fast.simdjson = json_fast.simdjson, None  # the general parser alone
    try:
        general = _mean_ms(lambda: decode_predict_request(body, sig, budget=RequestLimits().budget()), runs)
    finally:
        json_fast.simdjson = saved
    print(f"rest-decode body {len(body)} bytes: fast path {fast:.1f} ms, general parser {general:.1f} ms")


_ARENA = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
path, batch = sys.argv[1], int(sys.argv[2])
before = rss()
it = Interpreter(model_path=path, num_threads=1)
runner = it.get_signature_runner("serving_default")
name = next(iter(runner.get_input_details()))
shape = runner.get_input_details()[name]["shape"]
runner(**{name: np.zeros((batch, *shape[1:]), np.float32)})
print(f"{rss() - before:.0f}")
"""


def interpreter_memory(model: str, batches: list[int]) -> None:
    """RSS an interpreter adds once it has run one batch of each size, each in a fresh process."""
    for batch in batches:
        out = subprocess.run(
            [sys.executable, "-c", _ARENA, model, str(batch)], capture_output=True, text=True, check=True
        ).stdout.strip()
        print(f"interpreter-memory batch {batch}: +{out} MB")


def resize(runs: int) -> None:
    from deepclf.preprocessing import resize_bilinear

    image = np.random.default_rng(0).integers(0, 256, (179, 240, 3), dtype=np.uint8)
    print(f"resize 240x179 -> 180x180: {_mean_ms(lambda: resize_bilinear(image, (180, 180)), runs):.2f} ms")


def preprocess(runs: int) -> None:
    """What the image-bytes path adds in process: the photo-like 320x240 JPEG the benchmarks send, to 180x180."""
    from deepclf.bench.latency import sample_images
    from deepclf.preprocessing import preprocess as prep

    data = sample_images(None, n=1)[0]
    print(
        f"preprocess 320x240 JPEG ({len(data)} bytes) -> 180x180: {_mean_ms(lambda: prep(data, (180, 180)), runs):.2f} ms"
    )


_ECHO_SERVER = """
import sys, grpc
from concurrent import futures
handler = grpc.method_handlers_generic_handler(
    "floor.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request[:16])})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers([handler])
print(server.add_insecure_port("127.0.0.1:0"), flush=True)
server.start()
sys.stdin.read()  # until the parent closes our stdin
"""


def grpc_floor(runs: int) -> None:
    """The cost of a gRPC call itself, in Python at both ends as in the benchmarks: a synchronous ``grpc.server``
    (its own process) answering 16 bytes, called with a synchronous channel, sequentially (p50 of ``runs`` x 10
    calls after 100 warm-up calls), for a tiny request and one the size of a 180x180x3 float32 ``tensor_content``."""
    import grpc

    server = subprocess.Popen([sys.executable, "-c", _ECHO_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/floor.Echo/Echo", request_serializer=None, response_deserializer=None)
            for size in (16, 180 * 180 * 3 * 4):
                payload = b"x" * size
                for _ in range(100):
                    call(payload, timeout=10)
                times = []
                for _ in range(runs * 10):
                    t0 = time.perf_counter()
                    call(payload, timeout=10)
                    times.append(time.perf_counter() - t0)
                print(f"grpc-floor request {size} bytes: p50 {np.percentile(times, 50) * 1e3:.2f} ms")
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(10)


def batch_rows(model: str, batches: list[int], runs: int, threads: int) -> None:
    """What batching can save on the interpreter side: the time per image of one batch of each size."""
    from ai_edge_litert.interpreter import Interpreter

    for batch in batches:
        interpreter = Interpreter(model_path=model, num_threads=threads)
        runner = interpreter.get_signature_runner("serving_default")
        name = next(iter(runner.get_input_details()))
        shape = runner.get_input_details()[name]["shape"]
        x = np.random.default_rng(0).uniform(0, 255, (batch, *shape[1:])).astype(np.float32)
        ms = _mean_ms(lambda: runner(**{name: x}), runs)  # noqa: B023 - called before the loop moves on
        print(f"batch-rows batch {batch}, {threads} threads: {ms:.2f} ms per batch, {ms / batch:.2f} ms per image")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "what", choices=["rest-decode", "interpreter-memory", "resize", "preprocess", "grpc-floor", "batch-rows"]
    )
    p.add_argument("model", nargs="?", help="a .tflite file (interpreter-memory)")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument(
        "--batches", type=int, nargs="+", default=None, help="batch sizes (default 1 8 32 64; batch-rows 1 2 4 8)"
    )
    p.add_argument("--threads", type=int, default=2, help="interpreter threads (batch-rows; default 2)")
    args = p.parse_args(argv)
    if args.what == "rest-decode":
        rest_decode(args.runs)
    elif args.what == "resize":
        resize(args.runs)
    elif args.what == "preprocess":
        preprocess(args.runs)
    elif args.what == "grpc-floor":
        grpc_floor(args.runs)
    elif args.what == "batch-rows":
        if not args.model:
            p.error("batch-rows needs a .tflite file")
        batch_rows(args.model, args.batches or [1, 2, 4, 8], args.runs, args.threads)
    else:
        if not args.model:
            p.error("interpreter-memory needs a .tflite file")
        interpreter_memory(args.model, args.batches or [1, 8, 32, 64])
    return 0


if __name__ == "__main__":
    sys.exit(main())
