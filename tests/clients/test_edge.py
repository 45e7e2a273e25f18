"""Every client method against the real edge server on loopback: REST and gRPC, sync and async, versions and
labels, tensor and b64 inputs, and the same answers as in-process inference (tolerance 0: bit-identical)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepclf.clients import (
    GZIP_THRESHOLD,
    NO_RETRIES,
    AsyncGrpcClient,
    AsyncRestClient,
    FailedPrecondition,
    GrpcClient,
    InvalidInput,
    LocalClient,
    ModelMetadata,
    ModelNotFound,
    RestClient,
    TimeoutError,
)
from deepclf.preprocessing import preprocess_batch

from .conftest import MODEL, free_port

SYNC = ("rest", "grpc")


def client(edge: Any, kind: str, **kw: Any) -> Any:
    return {
        "rest": lambda: RestClient(edge.rest_url, **kw),
        "grpc": lambda: GrpcClient(edge.grpc_target, **kw),
        "arest": lambda: AsyncRestClient(edge.rest_url, **kw),
        "agrpc": lambda: AsyncGrpcClient(edge.grpc_target, **kw),
    }[kind]()


@pytest.mark.parametrize("kind", SYNC)
def test_status_and_metadata_by_version_and_label(edge: Any, local: LocalClient, kind: str) -> None:
    with client(edge, kind) as c:
        st = c.status(MODEL)
        assert st.available_versions == [1, 2] and st.available
        assert c.status(MODEL, version=1).available_versions == [1]
        # TF Serving's GetModelStatus ignores version_label: every version (docs/tfserving-behaviour.md 6.8).
        assert c.status(MODEL, label="canary").available_versions == [1, 2]
        md = c.metadata(MODEL)
        assert isinstance(md, ModelMetadata) and md.version == 2 and md.input_size() == (64, 64)
        assert c.metadata(MODEL, label="stable").version == 1
        assert c.metadata(MODEL, version=1).signatures == local.metadata().signatures
        with pytest.raises(ModelNotFound, match="nope"):
            c.status("nope")
        with pytest.raises(ModelNotFound):
            c.metadata(MODEL, version=7)
        with pytest.raises(InvalidInput, match="Unrecognized servable version label"):  # TF Serving: 400
            c.metadata(MODEL, label="unknown-label")


def _v1(edge: Any) -> Path:
    return Path(edge.config.model_configs[0].base_path) / "1"


@pytest.fixture(scope="module")
def local(edge: Any) -> Iterator[LocalClient]:
    with LocalClient(_v1(edge)) as c:  # LiteRT fp32, the edge server's format
        yield c


def test_local_client_version_comes_from_the_folder_name(shared_version_dir: Path, tmp_path: Path) -> None:
    # '²' passes str.isdigit() but int() raised: a model copied to such a folder could not be opened at all.
    import shutil

    for name, version in (("²", None), ("007", 7), ("3", 3)):
        shutil.copytree(shared_version_dir, tmp_path / name)
        with LocalClient(tmp_path / name) as c:
            assert c.version == version and c.metadata().version == version
            assert c.status().available_versions == [version or 0]


@pytest.mark.parametrize("kind", SYNC)
@pytest.mark.parametrize("send", ["tensor", "bytes"])
def test_classify_is_identical_to_in_process(
    edge: Any, local: LocalClient, photos: list[str], labels: list[str], kind: str, send: str
) -> None:
    """Same photos, same model file: remote results equal LocalClient's exactly (tolerance 0)."""
    want = local.classify(photos, model=MODEL, top_k=3, send=send)
    with client(edge, kind) as c:
        got = c.classify(photos, model=MODEL, version=1, top_k=3, send=send, labels=labels)
    assert len(got) == len(photos) == 40
    for g, w in zip(got, want, strict=True):
        assert (g.label, g.index, g.score, g.top_k) == (w.label, w.index, w.score, w.top_k)
        np.testing.assert_array_equal(g.probabilities, w.probabilities)  # bit-identical: max |diff| = 0


@pytest.mark.parametrize("kind", SYNC)
def test_predict_tensor_bytes_and_bare_array(edge: Any, local: LocalClient, photos: list[str], kind: str) -> None:
    batch = preprocess_batch(photos[:4], (64, 64))
    want = local.predict({"image": batch})
    jpegs = np.array([Path(p).read_bytes() for p in photos[:4]], dtype=object)
    with client(edge, kind) as c:
        out = c.predict({"image": batch}, model=MODEL, version=1)
        assert sorted(out) == ["classes", "labels", "probabilities"]
        np.testing.assert_array_equal(out["probabilities"], want["probabilities"])
        np.testing.assert_array_equal(out["classes"], want["classes"])
        assert list(out["labels"]) == list(want["labels"])
        bare = c.predict(batch, model=MODEL, label="stable")  # one array for the signature's single input
        np.testing.assert_array_equal(bare["probabilities"], want["probabilities"])
        by_bytes = c.predict({"image_bytes": jpegs}, model=MODEL, signature="predict_image_bytes")  # b64 on REST
        np.testing.assert_array_equal(
            by_bytes["probabilities"],
            local.predict({"image_bytes": jpegs}, signature="predict_image_bytes")["probabilities"],
        )
        with pytest.raises(InvalidInput, match="shape"):
            c.predict({"image": np.zeros((1, 8, 8, 3), np.float32)}, model=MODEL)
        with pytest.raises(InvalidInput):
            c.predict(
                {"image_bytes": np.array([b"not an image"], dtype=object)}, model=MODEL, signature="predict_image_bytes"
            )
        # TF Serving's answer: REST INVALID_ARGUMENT (400), gRPC FAILED_PRECONDITION; neither is a 404
        with pytest.raises(InvalidInput if kind == "rest" else FailedPrecondition, match="no_such_signature"):
            c.predict({"image": batch}, model=MODEL, signature="no_such_signature")


def test_rest_columnar_and_row_formats_give_the_same_answer(edge: Any, photos: list[str]) -> None:
    batch = preprocess_batch(photos[:3], (64, 64))
    with RestClient(edge.rest_url, format="columnar") as col, RestClient(edge.rest_url) as row:
        a = col.predict({"image": batch}, model=MODEL)
        b = row.predict({"image": batch}, model=MODEL)
        c = row.predict({"image": batch}, model=MODEL, format="columnar")
    for k in ("probabilities", "classes"):
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], c[k])


@pytest.mark.parametrize("kind", ["arest", "agrpc"])
async def test_async_clients_every_method(edge: Any, local: LocalClient, photos: list[str], kind: str) -> None:
    want = local.classify(photos[:8], top_k=2)
    async with client(edge, kind) as c:
        st = await c.wait_until_available(MODEL, 10, version=2)
        assert st.available_versions == [2]
        assert (await c.status(MODEL, label="stable")).available_versions == [1, 2]  # label ignored, as TF Serving
        assert (await c.metadata(MODEL, version=1)).input_size() == (64, 64)
        got = await c.classify(photos[:8], model=MODEL, version=1, top_k=2)
        assert [(g.index, g.score) for g in got] == [(w.index, w.score) for w in want]
        got_b = await c.classify(photos[:8], model=MODEL, label="stable", send="bytes")
        assert [g.index for g in got_b] == [w.index for w in local.classify(photos[:8], send="bytes")]
        out = await c.predict(preprocess_batch(photos[:2], (64, 64)), model=MODEL)
        assert out["probabilities"].shape == (2, 5)
        with pytest.raises(ModelNotFound):
            await c.status("nope")
        with pytest.raises(InvalidInput):
            await c.predict({"image": np.zeros((1, 8, 8, 3), np.float32)}, model=MODEL)


@pytest.mark.parametrize("kind", SYNC)
def test_wait_until_available_times_out_for_a_model_that_never_comes(edge: Any, kind: str) -> None:
    with client(edge, kind) as c:
        assert c.wait_until_available(MODEL, 5).available
        with pytest.raises(TimeoutError, match=r"'nope' was not available within 0\.3s.*ModelNotFound"):
            c.wait_until_available("nope", 0.3, poll_interval=0.05)


def test_large_batch_over_grpc_default_message_limit(edge: Any) -> None:
    """64 float images of 64x64 are 3 MiB; 600 are 29 MiB: over gRPC's 4 MiB default, under our raised limit."""
    batch = np.full((600, 64, 64, 3), 128.0, np.float32)
    with GrpcClient(edge.grpc_target, timeout=60) as c:
        out = c.predict({"image": batch}, model=MODEL)
    assert out["probabilities"].shape == (600, 5)
    np.testing.assert_array_equal(out["probabilities"], np.repeat(out["probabilities"][:1], 600, axis=0))


def test_round_robin_and_failover_across_targets(edge: Any, photos: list[str]) -> None:
    """A dead target in the list costs a retry, never a failed call (round-robin moves on to the live one)."""
    dead = free_port()
    with (
        RestClient([f"http://127.0.0.1:{dead}", edge.rest_url]) as r,
        GrpcClient([f"127.0.0.1:{dead}", edge.grpc_target]) as g,
    ):
        assert r.base_urls[1] == edge.rest_url and g.targets[1] == edge.grpc_target
        for _ in range(4):
            assert r.status(MODEL).available and g.status(MODEL).available
    with RestClient([f"http://127.0.0.1:{dead}", edge.rest_url], retry=NO_RETRIES) as r:
        outcomes: list[bool | str] = []
        for _ in range(4):
            try:
                outcomes.append(r.status(MODEL).available)
            except Exception as exc:  # recording which target failed
                outcomes.append(type(exc).__name__)
        assert outcomes == ["ConnectError", True, "ConnectError", True]  # strictly alternating targets


def test_gzip_request_bodies_give_the_same_answer(edge: Any, photos: list[str]) -> None:
    batch = preprocess_batch(photos[:8], (64, 64))  # ~600 KB of JSON: compressed above the 1 KiB threshold
    with (
        RestClient(edge.rest_url, gzip_threshold=1024) as gz,
        RestClient(edge.rest_url, gzip_threshold=None) as plain,
        RestClient(edge.rest_url, gzip_threshold=GZIP_THRESHOLD) as default,
    ):
        want = plain.predict({"image": batch}, model=MODEL)["probabilities"]
        np.testing.assert_array_equal(gz.predict({"image": batch}, model=MODEL)["probabilities"], want)
        # GZIP_THRESHOLD (64 KiB; opt-in), bytes images included
        np.testing.assert_array_equal(default.predict({"image": batch}, model=MODEL)["probabilities"], want)
        assert [c.index for c in default.classify(photos[:8], model=MODEL, send="bytes")] == [
            c.index for c in plain.classify(photos[:8], model=MODEL, send="bytes")
        ]
