"""Every runner (Keras, SavedModel, four LiteRT variants) behind the same interface, on real photos."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from deepclf.errors import InvalidInputError, ModelFormatError, NotFoundError, UsageError
from deepclf.manifest import Manifest
from deepclf.preprocessing import preprocess_batch
from deepclf.runtime import Classification, load_runner, standard_signatures
from deepclf.runtime.base import example_signature
from deepclf.runtime.litert import LiteRTRunner
from tests.prebuilt import require_tensorflow

FORMATS = {
    "keras": lambda run, ver: load_runner(run),
    "savedmodel": lambda run, ver: load_runner(ver, format="savedmodel"),
    "tflite-fp32": lambda run, ver: load_runner(ver),
    "tflite-fp16": lambda run, ver: load_runner(ver, variant="fp16"),
    "tflite-dynamic": lambda run, ver: load_runner(ver / "model_dynamic.tflite"),
    "tflite-int8": lambda run, ver: load_runner(ver, format="tflite-int8", num_threads=1),
}


@pytest.fixture(scope="module", params=list(FORMATS))
def runner(request, version_dir: Path):
    # The Keras run folder only for the Keras runner: where TensorFlow is absent, only those two skip.
    run_dir = request.getfixturevalue("run_dir") if request.param == "keras" else None
    if request.param == "savedmodel":
        require_tensorflow("the SavedModel runner")
    r = FORMATS[request.param](run_dir, version_dir)
    assert r.format == request.param
    yield r
    r.close()


def test_every_format_returns_identical_keys_dtypes_shapes(runner, photos) -> None:
    x = preprocess_batch(photos, runner.manifest.input)
    out = runner.run({"image": x})
    assert set(out) == {"probabilities", "classes", "labels"}
    assert out["probabilities"].dtype == np.float32 and out["probabilities"].shape == (8, 5)
    assert out["classes"].dtype == np.int64 and out["classes"].shape == (8,)
    assert out["labels"].dtype == object and out["labels"].shape == (8,)
    assert [b.decode() for b in out["labels"]] == [runner.manifest.labels[i] for i in out["classes"]]
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=0.03)  # int8: 1/256 steps
    assert runner.signatures == {
        **standard_signatures(runner.manifest),
        "classify_image_bytes": example_signature(runner.manifest),
    }


def test_bytes_signature_equals_float_signature(runner, photos) -> None:
    """Every runner decodes image_bytes with deepclf.preprocessing, so the two paths are identical."""
    raw = np.array([p.read_bytes() for p in photos], dtype=object)
    by_bytes = runner.run({"image_bytes": raw}, "predict_image_bytes")
    by_float = runner.run({"image": preprocess_batch(photos, runner.manifest.input)})
    np.testing.assert_array_equal(by_bytes["probabilities"], by_float["probabilities"])
    np.testing.assert_array_equal(by_bytes["classes"], by_float["classes"])


def test_results_do_not_depend_on_batch_size(runner, photos) -> None:
    x = preprocess_batch(photos, runner.manifest.input)
    whole = runner.predict(x)
    one_by_one = np.concatenate([runner.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(one_by_one, whole, atol=1e-5)
    again = runner.predict(x[:3])  # a cached batch size after others
    np.testing.assert_allclose(again, whole[:3], atol=1e-5)


def test_classify(runner, photos) -> None:
    results = runner.classify(photos[:3], top_k=3)
    assert len(results) == 3 and all(isinstance(r, Classification) for r in results)
    for r in results:
        assert len(r.top_k) == 3 and r.top_k[0] == (r.label, r.index, r.score)
        assert r.score == pytest.approx(float(r.probabilities.max()))
        assert [s for _, _, s in r.top_k] == sorted((s for _, _, s in r.top_k), reverse=True)
    one = runner.classify(photos[0], top_k=1)  # a single path works too
    assert one[0].label == results[0].label


@pytest.mark.parametrize(
    ("inputs", "signature", "error", "message"),
    [
        ({"image": np.zeros((1, 64, 64, 3), np.float32)}, "nope", NotFoundError, "signature 'nope' not found"),
        ({"pixels": np.zeros((1, 64, 64, 3), np.float32)}, "serving_default", InvalidInputError, "unexpected"),
        ({}, "serving_default", InvalidInputError, "missing ['image']"),
        ({"image": np.zeros((1, 64, 64, 3), np.float64)}, "serving_default", InvalidInputError, "float64"),
        ({"image": np.zeros((1, 180, 180, 3), np.float32)}, "serving_default", InvalidInputError, "[1, 180, 180, 3]"),
        ({"image": np.zeros((64, 64, 3), np.float32)}, "serving_default", InvalidInputError, "[batch, 64, 64, 3]"),
        ({"image": np.full((1, 64, 64, 3), 300, np.float32)}, "serving_default", InvalidInputError, "max 300"),
        ({"image": np.full((1, 64, 64, 3), np.nan, np.float32)}, "serving_default", InvalidInputError, "NaN"),
        (
            {"image_bytes": np.array([b"not an image"], object)},
            "predict_image_bytes",
            InvalidInputError,
            "image_bytes[0]: not a decodable image",
        ),
        ({"image_bytes": b"\xff\xd8"}, "predict_image_bytes", InvalidInputError, "single bytes object"),
        ({"image_bytes": np.array([[b"a"]], object)}, "predict_image_bytes", InvalidInputError, "shape [batch]"),
        ({"image_bytes": np.array([1.0])}, "predict_image_bytes", InvalidInputError, "dtype float64"),
    ],
)
def test_invalid_inputs_are_rejected_with_clear_messages(version_dir: Path, inputs, signature, error, message) -> None:
    with load_runner(version_dir, variant="int8") as r, pytest.raises(error) as info:
        r.run(inputs, signature)
    assert message in str(info.value)


def test_empty_batch_returns_empty_outputs(version_dir: Path) -> None:
    with load_runner(version_dir) as r:
        out = r.run({"image": np.zeros((0, 64, 64, 3), np.float32)})
    assert out["probabilities"].shape == (0, 5) and out["classes"].shape == (0,) and out["labels"].shape == (0,)


def test_litert_runner_is_safe_from_many_threads(version_dir: Path, photos) -> None:
    """One interpreter set per concurrent call: concurrent calls give the sequential answers."""
    with load_runner(version_dir, variant="int8", num_threads=1) as r:
        x = preprocess_batch(photos, r.manifest.input)
        expected = {n: r.predict(x[:n]) for n in (1, 2, 5, 8)}
        results: list[tuple[int, np.ndarray]] = []
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for _ in range(5):
                    results.append((n, r.predict(x[:n])))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2, 5, 8, 1, 8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert isinstance(r, LiteRTRunner)
        assert 1 <= len(r._pool.idle) <= len(threads)  # at most one set per call that ran at once
    assert not errors
    assert len(results) == 30
    for n, probs in results:
        np.testing.assert_array_equal(probs, expected[n])


def _interpreters_after_calls_from_threads(r, call, threads: int = 3) -> int:
    for _ in range(threads):  # one after the other, each from a new thread
        t = threading.Thread(target=call)
        t.start()
        t.join()
    return len(r._pool.idle)


def test_litert_runner_shares_its_interpreter_between_threads(version_dir: Path) -> None:
    """The interpreter built at load time answers the first call, from whichever thread (an edge server warms up
    in its loading thread and serves from its worker pool): sequential calls from new threads allocate nothing
    new (an interpreter of the 180x180 CNN is tens of MB: `benchmarks/micro.py interpreter-memory`)."""
    with load_runner(version_dir, num_threads=1) as r:
        assert isinstance(r, LiteRTRunner)
        x = np.zeros((1, *r.manifest.input.shape), np.float32)
        assert _interpreters_after_calls_from_threads(r, lambda: r.predict(x)) == 1
        assert len(r._pool.idle[0]) == 1  # one slot: batch size 1


def test_generic_runner_shares_its_interpreter_between_threads(tmp_path: Path) -> None:
    from deepclf.runtime.generic import GenericLiteRTRunner
    from tests.serving.conftest import build_half_plus_two

    path = tmp_path / "model.tflite"
    path.write_bytes(build_half_plus_two())
    with GenericLiteRTRunner(path) as r:
        got = []
        n = _interpreters_after_calls_from_threads(r, lambda: got.append(r.run({"x": np.array([2.0], np.float32)})))
        assert n == 1
        assert [float(o["y"][0]) for o in got] == [3.0, 3.0, 3.0]


def test_load_runner_dispatch(request, version_dir: Path) -> None:
    base = version_dir.parent
    assert load_runner(base).path == version_dir / "model.tflite"  # model base folder -> highest version
    assert load_runner(version_dir / "model_int8.tflite").format == "tflite-int8"
    assert load_runner(version_dir / "manifest.json").format == "tflite-fp32"
    assert isinstance(load_runner(version_dir).manifest, Manifest)
    assert load_runner(request.getfixturevalue("run_dir") / "model.keras").format == "keras"  # last: skips without TF


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"variant": "int4"}, UsageError, "unknown TFLite variant 'int4'"),
        ({"format": "onnx"}, UsageError, "unknown model format 'onnx'"),
        ({"format": "tflite-fp16", "variant": "int8"}, UsageError, "contradicts"),
        ({"format": "keras"}, ModelFormatError, "holds no model.keras"),
    ],
)
def test_load_runner_rejects_bad_options(version_dir: Path, kwargs, error, message) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_runner(version_dir, **kwargs)


def test_load_runner_missing_paths(tmp_path: Path, version_dir: Path) -> None:
    with pytest.raises(ModelFormatError, match="model path not found"):
        load_runner(tmp_path / "nowhere")
    with pytest.raises(ModelFormatError, match="holds no model"):
        load_runner(tmp_path)
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer")
    (version_dir / "manifest.json").is_file()
    Manifest.load(version_dir).save(tmp_path)
    with pytest.raises(ModelFormatError, match="not a loadable TFLite model"):
        load_runner(tmp_path / "junk.tflite")


def test_load_runner_base_folder_skips_odd_version_names(tmp_path: Path, version_dir: Path) -> None:
    # A base folder resolves to its highest version folder; '²' (str.isdigit() but not int()), '٣', '-1', hidden
    # and temporary folders are not versions, so they are skipped instead of crashing the lookup.
    import shutil

    from deepclf.runtime import resolve_model_path

    base = tmp_path / "flowers"
    shutil.copytree(version_dir, base / "2")
    for odd in ("²", "٣", "-1", ".tmp-9", str(2**63)):
        (base / odd).mkdir()
    assert resolve_model_path(base) == base / "2"
    with load_runner(base) as r:
        assert r.format == "tflite-fp32" and Path(r.path).parent == base / "2"
    shutil.rmtree(base / "2")
    with pytest.raises(ModelFormatError, match=r"no version folders; .*ASCII digits.*ignored: "):
        load_runner(base)


def test_load_runner_takes_the_runner_format_spelling_as_a_variant(version_dir: Path) -> None:
    # deepclf.variants: "int8" is the name; "tflite-int8" (Runner.format, what the server reports) means the same.
    with load_runner(version_dir, variant="tflite-int8") as a, load_runner(version_dir, format="tflite-int8") as b:
        assert isinstance(a, LiteRTRunner) and isinstance(b, LiteRTRunner)
        assert a.format == b.format == "tflite-int8" and a.variant == b.variant == "int8"
    with pytest.raises(UsageError, match="contradicts"):
        load_runner(version_dir, format="tflite-fp16", variant="tflite-int8")


def test_load_runner_refuses_a_manifest_input_it_cannot_honour(tmp_path: Path, version_dir: Path) -> None:
    # Before: resize="nearest" was read by no code, and the model was silently fed bilinear-resized pixels.
    import json
    import shutil

    shutil.copytree(version_dir, tmp_path / "1")
    doc = json.loads((tmp_path / "1" / "manifest.json").read_text())
    doc["input"]["resize"] = "nearest"
    (tmp_path / "1" / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(
        ModelFormatError,
        match=r"1/manifest.json: input.resize is 'nearest'; this version of deepclf "
        r"implements only 'bilinear'",
    ):
        load_runner(tmp_path / "1")


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (0.0, False),
        (-0.0, False),  # the one-pass check reads its bits as out of range; the full check accepts it
        (255.0, False),
        (float(np.nextafter(np.float32(255), np.float32(300))), True),
        (-1e-30, True),
        (float("nan"), True),
        (float("inf"), True),
    ],
)
def test_float_input_range_is_exact_at_its_edges(version_dir: Path, value: float, refused: bool) -> None:
    with load_runner(version_dir) as r:
        x = np.full((2, *r.manifest.input.shape), 128, np.float32)
        x[1, 3, 4, 2] = value
        if refused:
            with pytest.raises(InvalidInputError, match="image"):
                r.run({"image": x})
        else:
            assert r.run({"image": x})["probabilities"].shape == (2, 5)
