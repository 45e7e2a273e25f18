"""The I/O-free core: retry decisions, backoff, deadlines, targets, addressing, REST bodies, labels, results."""

from __future__ import annotations

import gzip
import time

import numpy as np
import orjson
import pytest

from deepclf.clients import (
    ConnectError,
    InvalidInput,
    ModelNotFound,
    ModelStatus,
    RetryPolicy,
    TimeoutError,
    TLSError,
    Unavailable,
    VersionStatus,
    is_retryable,
)
from deepclf.clients._addressing import model_key
from deepclf.clients._classify import LabelBook, classifications, classify_batches, image_list
from deepclf.clients._rest_codec import RestCodec, rest_model_path
from deepclf.clients._retry import CallState, RoundRobin, WaitState
from deepclf.clients._targets import as_targets, parse_grpc_target, parse_rest_url
from deepclf.errors import UsageError
from deepclf.protocol.errors import DeadlineExceeded, ServingError
from deepclf.protocol.rest import decode_predict_request


class FakeClock:
    """A clock the test moves by hand (the core never sleeps; it only reads the time)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_exponentially_and_is_capped_without_jitter() -> None:
    p = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, multiplier=2.0, jitter=0.0)
    assert [p.backoff(n, rand=0.7) for n in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_full_jitter_spreads_backoff_between_zero_and_the_cap() -> None:
    p = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, jitter=1.0)
    assert p.backoff(3, rand=0.0) == pytest.approx(0.4)
    assert p.backoff(3, rand=0.75) == pytest.approx(0.1)
    half = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, jitter=0.5)
    assert half.backoff(3, rand=0.999999) == pytest.approx(0.2, rel=1e-5)


def test_call_retries_only_retryable_errors_until_max_attempts() -> None:
    clock = FakeClock()
    call = CallState(RetryPolicy(max_attempts=3, jitter=0.0, initial_backoff=0.1), 10.0, clock=clock)
    call.next_attempt()
    assert call.backoff(Unavailable("loading")) == pytest.approx(0.1)
    call.next_attempt()
    assert call.backoff(ConnectError("refused")) == pytest.approx(0.2)
    call.next_attempt()
    err = Unavailable("still loading")
    with pytest.raises(Unavailable) as info:
        call.backoff(err)
    assert info.value is err and "gave up after 3 attempts" in "".join(err.__notes__)


@pytest.mark.parametrize(
    "error", [InvalidInput("bad"), ModelNotFound("no"), TLSError("bad cert"), DeadlineExceeded("late")]
)
def test_final_errors_are_never_retried(error: ServingError) -> None:
    call = CallState(RetryPolicy(max_attempts=10), 10.0)
    call.next_attempt()
    with pytest.raises(type(error)) as info:
        call.backoff(error)
    assert info.value is error
    assert not is_retryable(error)


def test_retry_that_cannot_start_before_the_deadline_raises_timeout_with_the_last_error() -> None:
    clock = FakeClock()
    call = CallState(RetryPolicy(max_attempts=10, initial_backoff=0.5, jitter=0.0), 1.0, clock=clock)
    call.next_attempt()
    clock.now += 0.7  # the attempt took 0.7 s; 0.3 s left, the backoff is 0.5 s
    last = ConnectError("refused")
    with pytest.raises(TimeoutError) as info:
        call.backoff(last)
    assert info.value.__cause__ is last
    assert "deadline of 1s passed after 1 attempt" in str(info.value) and "refused" in str(info.value)


def test_max_elapsed_budget_ends_retries() -> None:
    clock = FakeClock()
    call = CallState(RetryPolicy(max_attempts=100, max_elapsed=1.0, initial_backoff=0.3, jitter=0.0), 60.0, clock=clock)
    call.next_attempt()
    clock.now += 0.8
    with pytest.raises(Unavailable) as info:
        call.backoff(Unavailable("x"))
    assert "max_elapsed=1.0s" in "".join(info.value.__notes__)


def test_each_attempt_gets_what_is_left_of_the_deadline() -> None:
    clock = FakeClock()
    call = CallState(RetryPolicy(), 2.0, clock=clock)
    assert call.next_attempt() == pytest.approx(2.0)
    clock.now += 1.5
    assert call.next_attempt() == pytest.approx(0.5)
    assert call.attempts == 2


@pytest.mark.parametrize(
    "kw",
    [
        {"max_attempts": 0},
        {"initial_backoff": 2.0, "max_backoff": 1.0},
        {"jitter": 2.0},
        {"multiplier": 0.5},
        {"max_elapsed": -1},
    ],
)
def test_bad_retry_policies_are_refused_with_the_value(kw: dict) -> None:
    with pytest.raises(UsageError, match=repr(next(iter(kw.values())))):
        RetryPolicy(**kw)


def test_round_robin_cycles_targets() -> None:
    rr = RoundRobin(["a", "b", "c"])
    assert [rr.next() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    assert as_targets("h1:1, h2:2") == ["h1:1", "h2:2"]
    with pytest.raises(UsageError):
        RoundRobin([])


def test_target_parsing() -> None:
    assert parse_grpc_target("grpc://h:8500") == ("h:8500", False)
    assert parse_grpc_target("grpcs://h:8500/") == ("h:8500", True)
    assert parse_grpc_target("h:8500") == ("h:8500", None)
    with pytest.raises(UsageError, match="'http'"):
        parse_grpc_target("http://h:8500")
    assert parse_rest_url("http://h:8501/") == "http://h:8501"
    with pytest.raises(UsageError, match="h:8501"):
        parse_rest_url("h:8501")


def test_model_addressing_and_rest_paths() -> None:
    assert rest_model_path(model_key("flowers", None, None)) == "/v1/models/flowers"
    assert rest_model_path(model_key("flowers", 3, None)) == "/v1/models/flowers/versions/3"
    assert rest_model_path(model_key("flowers", None, "stable")) == "/v1/models/flowers/labels/stable"
    assert rest_model_path(model_key("a b/c", None, None)) == "/v1/models/a%20b%2Fc"
    with pytest.raises(UsageError, match="not both"):
        model_key("flowers", 1, "stable")
    with pytest.raises(UsageError, match="-1"):
        model_key("flowers", -1, None)
    with pytest.raises(UsageError, match="''"):
        model_key("", None, None)


def test_rest_bodies_row_columnar_b64_and_gzip() -> None:
    key = model_key("flowers", None, "canary")
    img = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    req = RestCodec().predict(key, {"image": img}, signature="serving_default")
    assert req.method == "POST" and req.path == "/v1/models/flowers/labels/canary:predict"
    assert "Content-Encoding" not in req.headers
    assert req.content is not None
    doc = orjson.loads(req.content)
    assert doc["signature_name"] == "serving_default" and len(doc["instances"]) == 2
    back = decode_predict_request(req.content, {"image": "float32"})
    np.testing.assert_array_equal(back.inputs["image"], img)

    jpeg = b"\xff\xd8\x00\x00binary\x00"
    req = RestCodec(format="columnar").predict(
        key, {"image_bytes": np.array([jpeg], dtype=object)}, signature="predict_image_bytes"
    )
    assert req.content is not None
    doc = orjson.loads(req.content)
    assert list(doc["inputs"]["image_bytes"][0]) == ["b64"]
    assert decode_predict_request(req.content, {"image_bytes": object}).inputs["image_bytes"][0] == jpeg

    big = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    req = RestCodec(gzip_threshold=1024, headers={"x-token": "t"}).predict(
        key, {"image": big}, signature="serving_default"
    )
    assert req.headers["Content-Encoding"] == "gzip" and req.headers["x-token"] == "t"
    assert req.content is not None
    plain = gzip.decompress(req.content)
    np.testing.assert_array_equal(decode_predict_request(plain, {"image": "float32"}).inputs["image"], big)
    assert len(req.content) < len(plain)


def test_label_book_learns_names_from_answers() -> None:
    book, key = LabelBook(), model_key("flowers", None, None)
    assert book.names(key, 3) == ["class_0", "class_1", "class_2"]
    book.learn(key, {"classes": np.array([2, 0]), "labels": np.array([b"roses", b"daisy"], dtype=object)})
    assert book.names(key, 3) == ["daisy", "class_1", "roses"]
    assert book.names(key, 2, given=["a", "b"]) == ["a", "b"]
    with pytest.raises(UsageError, match="3 names"):
        book.names(key, 2, given=["a", "b", "c"])


def test_classifications_match_the_runner_rule() -> None:
    probs = np.array([[0.1, 0.6, 0.3], [0.4, 0.2, 0.4]], dtype=np.float32)
    out = classifications(probs, ["a", "b", "c"], 2)
    assert (out[0].label, out[0].index) == ("b", 1) and out[0].score == pytest.approx(0.6)
    assert [t[1] for t in out[1].top_k] == [0, 2]  # ties go to the lower index, as Runner.classify does
    np.testing.assert_array_equal(out[1].probabilities, probs[1])


def test_classify_batches_bound_batches_and_pick_the_signature(tmp_path) -> None:
    from PIL import Image

    p = tmp_path / "x.png"
    Image.new("RGB", (10, 8), (200, 10, 10)).save(p)
    items = image_list([str(p)] * 33)
    batches = list(classify_batches(items, "tensor", (6, 6)))
    assert [(s, v["image"].shape) for s, v in batches] == [
        ("serving_default", (32, 6, 6, 3)),
        ("serving_default", (1, 6, 6, 3)),
    ]
    ((sig, inputs),) = classify_batches(image_list(str(p)), "bytes", None)
    assert sig == "predict_image_bytes" and inputs["image_bytes"][0] == p.read_bytes()


def test_wait_state_waits_for_the_version_asked_and_names_the_last_answer() -> None:
    wait = WaitState(model_key("flowers", 2, None), 0.05, poll_interval=1.0, attempt_timeout=0.01)
    assert wait.next_attempt() == pytest.approx(0.01)
    assert not wait.ready(ModelStatus("flowers", (VersionStatus(1, "AVAILABLE"), VersionStatus(2, "LOADING"))))
    assert 0 < wait.pause() <= 0.05  # never sleeps past the end of the wait
    assert wait.ready(ModelStatus("flowers", (VersionStatus(2, "AVAILABLE"),)))
    wait.failed(ConnectError("refused"))
    time.sleep(0.06)
    assert wait.pause() == 0.0
    with pytest.raises(TimeoutError, match=r"'flowers' was not available within 0.05s; last: ConnectError: refused"):
        wait.next_attempt()


def test_grpc_concurrency_limit_is_retryable_other_resource_exhausted_is_not() -> None:
    from deepclf.clients._errors import map_grpc_error
    from deepclf.protocol.errors import ResourceExhausted

    class FakeRpcError(Exception):
        __module__ = "grpc._channel"

        def __init__(self, details: str) -> None:
            self._details = details

        def code(self) -> object:
            import grpc

            return grpc.StatusCode.RESOURCE_EXHAUSTED

        def details(self) -> str:
            return self._details

    limit = map_grpc_error(FakeRpcError("Concurrent RPC limit exceeded!"))
    assert isinstance(limit, ResourceExhausted) and is_retryable(limit)
    too_big = map_grpc_error(FakeRpcError("Received message larger than max (5 vs. 4)"))
    assert isinstance(too_big, ResourceExhausted) and not is_retryable(too_big)
