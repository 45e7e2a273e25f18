"""Target spec strings: what they build, and clear errors for malformed ones."""

from __future__ import annotations

import pytest

from deepclf.bench.local_targets import LocalClientTarget, RawLiteRTTarget, RunnerTarget
from deepclf.bench.remote_targets import RemoteTarget
from deepclf.bench.specs import parse_target, parse_targets, split_spec
from deepclf.errors import UsageError


def test_local_specs():
    t = parse_target("tflite:models/flowers/1?variant=int8&threads=2")
    assert isinstance(t, RunnerTarget)
    assert (t.path, t.format, t.variant, t.threads, t.kind) == ("models/flowers/1", "tflite", "int8", 2, "quantized")
    assert t.name == "tflite-int8-t2"
    assert parse_target("tflite:m/1").kind == "float"
    assert parse_target("keras:runs/basic").kind == "reference"
    assert parse_target("savedmodel:m/1?name=sm").name == "sm"
    raw = parse_target("litert-raw:m/1", threads=4)
    assert isinstance(raw, RawLiteRTTarget)
    assert raw.threads == 4  # the CLI's --threads default applies


def test_local_client_specs():
    t = parse_target("local:m/1?threads=2&send=bytes")
    assert isinstance(t, LocalClientTarget)
    assert (t.path, t.format, t.variant, t.threads, t.send, t.kind) == ("m/1", "tflite", None, 2, "bytes", "float")
    assert t.name == "local-fp32-t2-bytes"
    q = parse_target("local:m/1?variant=int8&name=lc", threads=3)
    assert isinstance(q, LocalClientTarget)
    assert (q.name, q.variant, q.threads, q.kind, q.send) == ("lc", "int8", 3, "quantized", "tensor")


def test_variant_spellings_in_specs():
    # deepclf.variants: the runner-format spelling names the same variant, shown canonical in names and reports.
    t = parse_target("tflite:m/1?variant=tflite-int8")
    assert isinstance(t, RunnerTarget)
    assert (t.variant, t.kind, t.name) == ("int8", "quantized", "tflite-int8")
    raw = parse_target("litert-raw:m/1?variant=tflite-fp16")
    assert isinstance(raw, RawLiteRTTarget)
    assert raw.variant == "fp16"


def test_remote_specs():
    t = parse_target("rest://127.0.0.1:9000/flowers?send=bytes&version=3")
    assert isinstance(t, RemoteTarget)
    assert (t.transport, t.host, t.port, t.model, t.send, t.version) == (
        "rest",
        "127.0.0.1",
        9000,
        "flowers",
        "bytes",
        3,
    )
    assert t.kind == "served"
    assert t.metrics_url == "http://127.0.0.1:9000/monitoring/prometheus/metrics"
    g = parse_target("grpc://localhost/flowers")
    assert isinstance(g, RemoteTarget)
    assert g.port == 8500 and g.metrics_url == "http://localhost:8501/monitoring/prometheus/metrics"
    assert parse_target("grpc://h:7000/m?metrics=http://h:1/x").metrics_url == "http://h:1/x"
    assert parse_target("rest://h:1/m?codec=stdlib").name == "rest-tensor-stdlib"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("models/flowers/1", "SCHEME:LOCATION"),
        ("onnx:model.onnx", "unknown target scheme 'onnx'"),
        ("tflite:m/1?variant=int4", "unknown TFLite variant 'int4'"),
        ("tflite:m/1?threads=two", "threads must be an integer, got 'two'"),
        ("tflite:m/1?threads=0", "threads must be positive"),
        ("tflite:m/1?colour=red", "unknown option(s) colour"),
        ("rest://127.0.0.1:8501/flowers?send=pixels", "send must be one of tensor, bytes"),
        ("rest://127.0.0.1:8501/", "HOST:PORT/MODEL"),
        ("grpc://127.0.0.1:99999/m", "bad port"),
        ("rest://h:1/m?codec=pickle", "codec must be"),
        ("keras:", "names no model path"),
        ("local:m/1?codec=stdlib", "unknown option(s) codec"),
        ("local:", "names no model path"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(UsageError, match=None) as info:
        parse_target(spec)
    assert message in str(info.value)


def test_names_are_made_unique_and_an_empty_list_is_refused():
    ts = parse_targets(["tflite:a", "tflite:b", "tflite:c"])
    assert [t.name for t in ts] == ["tflite-fp32", "tflite-fp32#2", "tflite-fp32#3"]
    with pytest.raises(UsageError, match="no targets"):
        parse_targets([])


def test_split_spec_keeps_the_query():
    ts = split_spec("tflite:/abs/path/1?variant=fp16&name=x")
    assert (ts.scheme, ts.location, ts.options) == ("tflite", "/abs/path/1", {"variant": "fp16", "name": "x"})


def test_peer_specs():
    from deepclf.bench.peers.target import PeerServerTarget, PeerTarget

    t = parse_target("rows://127.0.0.1:9001/flowers?size=180&send=bytes")
    assert isinstance(t, PeerTarget) and (t.host, t.port, t.model) == ("127.0.0.1", 9001, "flowers")
    assert t.input_size == (180, 180) and t.send == "bytes" and t.name == "rows-bytes"
    assert parse_target("rows://edge/flowers").input_size is None  # the run's --size
    k = parse_target("kserve:models/flowers/1?threads=3&python=/opt/peers/bin/python")
    assert isinstance(k, PeerServerTarget) and (k.peer, k.threads, k.python, k.name) == (
        "kserve",
        3,
        "/opt/peers/bin/python",
        "kserve",
    )
    f = parse_target("fastapi:model.tflite")
    assert isinstance(f, PeerServerTarget) and f.peer == "fastapi"
    with pytest.raises(UsageError, match="codec"):
        parse_target("rows://edge:1/flowers?codec=stdlib")
    with pytest.raises(UsageError, match="names no model"):
        parse_target("kserve:")


def test_a_peer_without_its_packages_fails_to_open_with_one_line(tmp_path):
    from deepclf.bench.peers.launch import PeerUnavailable

    t = parse_target(f"kserve:{tmp_path}/model.tflite?python={tmp_path}/no-python")
    with pytest.raises(PeerUnavailable, match=r"pip install '\.\[peers\]'"):
        t.open()
