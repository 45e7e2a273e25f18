"""A closed-loop overload generator: clients that send TF Serving predicts back to back, over REST and gRPC (so a
refusal is retried at once, as ``hey`` does), each call timed and sorted into served / shed (503 + ``Retry-After``,
UNAVAILABLE) / deadline (504, DEADLINE_EXCEEDED) / anything else.

It is what ``tests/serving/test_overload.py`` and ``benchmarks/overload_floor.py`` load a server with. The clients
are raw HTTP/1.1 on kept-alive connections and ``grpc.aio`` channels, 32 to an asyncio loop, so that a client's
own cost per call is a few microseconds and what is timed is the server; the load runs in child processes so that
it does not share a GIL with the caller::

    calls = run_load(rest_url, grpc_target, n_rest=32, n_grpc=32, seconds=10, processes=2)
    served = [c.seconds for c in calls if c.outcome == "ok"]
    unloaded = unloaded_latencies(rest_url, grpc_target, calls=100)     # {"rest": [s, ...], "grpc": [...]}

``photo=<JPEG bytes>`` sends one encoded photo to ``predict_image_bytes`` instead of a tensor (REST as
``{"b64": ...}``, gRPC as a string tensor): what a user of an image classifier sends.

``run_client_load`` is the same kind of load from ``deepclf.clients`` (``RestClient`` / ``GrpcClient``, one per
client thread, their default retry settings): each call ends in a result or an error, and the outcomes come back.

``python -m deepclf.bench.overload REST_URL GRPC_TARGET N_REST N_GRPC SECONDS CALLS_EACH MODEL H W [PHOTO]`` is one
child: its calls as JSON on stdout (``--clients KIND TARGET N CALLS_EACH MODEL PHOTO`` for ``run_client_load``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


class Call(NamedTuple):
    """One call: ``api`` "rest" or "grpc", ``outcome`` "ok", "shed", "deadline" or "other", its ``seconds``, and
    for "other" what came back."""

    api: str
    outcome: str
    seconds: float
    detail: str


def image(size: tuple[int, int]) -> np.ndarray:
    """The request's one image: a fixed random batch of one, float32 in 0..255."""
    return np.random.default_rng(0).uniform(0, 255, (1, *size, 3)).astype(np.float32)


#: The signature that takes encoded images (``{"b64": ...}`` over REST, a string tensor over gRPC).
IMAGE_BYTES_SIGNATURE = "predict_image_bytes"


def photo_body(photo: bytes) -> bytes:
    """The REST predict body for one encoded photo: ``{"signature_name": "predict_image_bytes", "instances":
    [{"b64": ...}]}`` (what ``hey -D`` posts in the overload benchmark)."""
    b64 = base64.b64encode(photo).decode()
    return json.dumps({"signature_name": IMAGE_BYTES_SIGNATURE, "instances": [{"b64": b64}]}).encode()


def _payloads(model: str, size: tuple[int, int], photo: bytes | None) -> tuple[bytes, Any]:
    """(REST body, gRPC ``PredictRequest``) of one call: the image tensor, or ``photo`` as image bytes."""
    from deepclf import protocol as P

    if photo is None:
        x = image(size)
        request = P.PredictRequest(model_spec=P.model_spec(model))
        request.inputs["image"].CopyFrom(P.to_tensor_proto(x))
        return P.encode_predict_request({"image": x}), request
    request = P.PredictRequest(model_spec=P.model_spec(model, signature_name=IMAGE_BYTES_SIGNATURE))
    request.inputs["image_bytes"].CopyFrom(P.to_tensor_proto(np.array([photo], dtype=object)))
    return photo_body(photo), request


async def rest_call(host: str, port: int, head: bytes, body: bytes, conn: list[Any]) -> tuple[str, float, str]:
    """One predict over a kept-alive HTTP/1.1 connection (``conn`` holds its reader/writer, opened when empty)."""
    t0 = time.perf_counter()
    try:
        if not conn:
            conn.extend(await asyncio.open_connection(host, port))
        reader, writer = conn
        writer.write(head + body)
        status = int((await reader.readline()).split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        text = await reader.readexactly(int(headers.get("content-length", "0")))
        if "close" in headers.get("connection", "").lower():
            writer.close()
            conn.clear()
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        for w in conn[1:]:
            w.close()
        conn.clear()
        return "other", time.perf_counter() - t0, f"rest {type(exc).__name__}: {exc}"[:300]
    dt = time.perf_counter() - t0
    if status == 200:
        return "ok", dt, ""
    if status == 503 and headers.get("retry-after"):
        return "shed", dt, ""
    if status == 504:
        return "deadline", dt, ""
    return "other", dt, f"rest {status} {headers.get('retry-after')!r} {text[:200]!r}"


async def grpc_call(call: Any, request: Any) -> tuple[str, float, str]:
    """One Predict on a ``grpc.aio`` channel's callable."""
    import grpc

    t0 = time.perf_counter()
    try:
        await call(request, timeout=30)
        return "ok", time.perf_counter() - t0, ""
    except grpc.aio.AioRpcError as exc:
        dt = time.perf_counter() - t0
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return "shed", dt, ""
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return "deadline", dt, ""
        return "other", dt, f"grpc {exc.code().name} {exc.details()}"[:300]


async def run_clients(
    rest_url: str,
    grpc_target: str,
    n_rest: int,
    n_grpc: int,
    *,
    seconds: float = 0.0,
    calls_each: int = 0,
    model: str = "flowers",
    size: tuple[int, int] = (64, 64),
    photo: bytes | None = None,
) -> list[Call]:
    """``n_rest`` + ``n_grpc`` clients in this event loop, sending back to back for ``seconds`` (or ``calls_each``
    calls each, when given): every call, in the order they ended. ``photo``: send it as image bytes instead of
    the image tensor."""
    import grpc

    from deepclf import protocol as P

    body, request = _payloads(model, size, photo)
    host, port = rest_url.split("//")[1].rsplit(":", 1)
    head = (
        f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    out: list[Call] = []
    stop = time.perf_counter() + seconds

    def more(done: int) -> bool:
        return done < calls_each if calls_each else time.perf_counter() < stop

    async def rest_client() -> None:
        conn: list[Any] = []
        done = 0
        while more(done):
            out.append(Call("rest", *await rest_call(host, int(port), head, body, conn)))
            done += 1
        for w in conn[1:]:
            w.close()

    async def grpc_client() -> None:
        async with grpc.aio.insecure_channel(grpc_target) as channel:
            call = channel.unary_unary(
                P.PREDICT.path,
                request_serializer=P.PredictRequest.SerializeToString,
                response_deserializer=P.PredictResponse.FromString,
            )
            done = 0
            while more(done):
                out.append(Call("grpc", *await grpc_call(call, request)))
                done += 1

    await asyncio.gather(*[rest_client() for _ in range(n_rest)], *[grpc_client() for _ in range(n_grpc)])
    return out


def run_load(
    rest_url: str,
    grpc_target: str,
    n_rest: int,
    n_grpc: int,
    *,
    seconds: float = 0.0,
    calls_each: int = 0,
    processes: int = 2,
    model: str = "flowers",
    size: tuple[int, int] = (64, 64),
    timeout: float | None = None,
    photo: str | Path | None = None,
) -> list[Call]:
    """The clients split over ``processes`` child processes (``n_rest`` and ``n_grpc`` each divided evenly), run
    at once; every call of all of them. ``photo``: a JPEG file sent as image bytes instead of the tensor."""
    if n_rest % processes or n_grpc % processes:
        raise ValueError(f"{n_rest} REST and {n_grpc} gRPC clients do not split over {processes} processes")
    args = [rest_url, grpc_target, n_rest // processes, n_grpc // processes, seconds, calls_each, model, *size]
    args += [photo] if photo is not None else []
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", __name__, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    calls: list[Call] = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout if timeout is not None else seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"the load generator failed: {err[-3000:]}")
        calls += [Call(*c) for c in json.loads(out)]
    return calls


def unloaded_latencies(
    rest_url: str,
    grpc_target: str,
    *,
    calls: int = 100,
    warmup: int = 5,
    model: str = "flowers",
    size: tuple[int, int] = (64, 64),
    photo: str | Path | None = None,
) -> dict[str, list[float]]:
    """``{"rest": [...], "grpc": [...]}``: ``calls`` sequential predicts per API (one client, REST then gRPC) by the
    same client code as the load, after ``warmup`` calls that are left out (connection set-up, first calls).
    Every call must succeed: the unloaded latency is what a ratio is taken against."""
    out = {}
    for api, (n_rest, n_grpc) in (("rest", (1, 0)), ("grpc", (0, 1))):
        done = run_load(
            rest_url,
            grpc_target,
            n_rest,
            n_grpc,
            calls_each=calls + warmup,
            processes=1,
            model=model,
            size=size,
            photo=photo,
        )
        failed = [c.detail for c in done if c.outcome != "ok"]
        if failed:
            raise RuntimeError(f"{len(failed)} unloaded {api} calls failed: {failed[:3]}")
        out[api] = [c.seconds for c in done[warmup:]]
    return out


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (seconds) in milliseconds; NaN for none."""
    return float(np.percentile(values, q)) * 1e3 if values else float("nan")


class Outcome(NamedTuple):
    """One ``deepclf.clients`` call: ``outcome`` "ok", "deadline" (the client's ``TimeoutError`` /
    DEADLINE_EXCEEDED) or "error" (anything else; ``detail`` says what), its ``started`` / ``seconds``
    (``time.time()`` and duration)."""

    outcome: str
    started: float
    seconds: float
    detail: str


def client_calls(kind: str, target: str, n_clients: int, calls_each: int, model: str, photo: bytes) -> list[Outcome]:
    """``n_clients`` threads in this process, each with its own ``RestClient`` (``kind="rest"``) or ``GrpcClient``
    (default retry settings and deadline), making ``calls_each`` predicts of ``photo`` (image bytes) one after the
    other: every call's outcome."""
    from deepclf.clients import DeadlineExceeded, GrpcClient, RestClient, ServingError

    out: list[Outcome] = []
    lock = threading.Lock()
    start = threading.Barrier(n_clients)

    def client() -> None:
        mine = []
        with RestClient(target) if kind == "rest" else GrpcClient(target) as c:
            start.wait()
            for _ in range(calls_each):
                t0, wall = time.perf_counter(), time.time()
                try:
                    c.predict({"image_bytes": [photo]}, model=model, signature=IMAGE_BYTES_SIGNATURE)
                    outcome, detail = "ok", ""
                except DeadlineExceeded as exc:
                    outcome, detail = "deadline", str(exc)[:300]
                except ServingError as exc:
                    outcome, detail = "error", f"{type(exc).__name__}: {exc}"[:300]
                mine.append(Outcome(outcome, wall, time.perf_counter() - t0, detail))
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run_client_load(
    kind: str,
    target: str,
    n_clients: int,
    calls_each: int,
    *,
    photo: str | Path,
    model: str = "flowers",
    processes: int = 2,
    timeout: float = 600.0,
) -> list[Outcome]:
    """``client_calls`` split over ``processes`` child processes (``n_clients`` divided evenly), run at once."""
    if n_clients % processes:
        raise ValueError(f"{n_clients} clients do not split over {processes} processes")
    args = ["--clients", kind, target, n_clients // processes, calls_each, model, photo]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", __name__, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    calls: list[Outcome] = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"the client load failed: {err[-3000:]}")
        calls += [Outcome(*c) for c in json.loads(out)]
    return calls


def main(argv: list[str]) -> int:
    if argv[0] == "--clients":
        kind, target, n, calls_each, model, photo_path = argv[1:]
        photo = Path(photo_path).read_bytes()
        sys.stdout.write(json.dumps(client_calls(kind, target, int(n), int(calls_each), model, photo)))
        return 0
    rest_url, grpc_target, n_rest, n_grpc, seconds, calls_each, model, h, w = argv[:9]
    calls = asyncio.run(
        run_clients(
            rest_url,
            grpc_target,
            int(n_rest),
            int(n_grpc),
            seconds=float(seconds),
            calls_each=int(calls_each),
            model=model,
            size=(int(h), int(w)),
            photo=Path(argv[9]).read_bytes() if len(argv) > 9 else None,
        )
    )
    sys.stdout.write(json.dumps(calls))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
