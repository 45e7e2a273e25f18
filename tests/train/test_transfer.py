"""Transfer learning with Keras applications backbones, on weights files the tests make themselves.

No mocks: each weights file is a real backbone saved from a random initialisation, loaded by the same code path a
downloaded ImageNet file takes (``keras.applications.<App>(weights=PATH)``). ``imagenet`` itself is tried for real
with the network made unreachable (a proxy on a closed local port), so it fails the same way on every machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf: Any = pytest.importorskip("tensorflow")

from deepclf.errors import ModelFormatError, UsageError
from deepclf.train.models import build_model
from deepclf.train.trainer import TrainConfig, train
from deepclf.train.transfer import BACKBONE_LAYER, build_backbone


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MobileNetV3Small backbone (no top) from a random initialisation, saved as a Keras weights file."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v3_small.weights.h5"
    build_backbone("mobilenet_v3_small", (32, 32), None).save_weights(path)
    return path


def _saved_backbone(path: Path) -> list[np.ndarray]:
    bb = build_backbone("mobilenet_v3_small", (32, 32), None)
    bb.load_weights(path)
    return [w.numpy() for w in bb.weights]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_weights_file_is_loaded_into_the_backbone(mobilenet_file: Path) -> None:
    model = build_model("mobilenet_v3_small", 5, (48, 48), weights=str(mobilenet_file))
    assert model.input_shape == (None, 48, 48, 3) and model.output_shape == (None, 5)
    loaded = [w.numpy() for w in model.get_layer(BACKBONE_LAYER).weights]
    saved = _saved_backbone(mobilenet_file)
    assert _same(loaded, saved)
    fresh = [w.numpy() for w in build_backbone("mobilenet_v3_small", (48, 48), None).weights]
    assert not _same(fresh, saved)  # so equality above means the file was read, not a coincidence of seeds


def test_bad_weights_are_refused_clearly(mobilenet_file: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"needs --weights imagenet or --weights PATH"):
        build_model("mobilenet_v3_small", 5, (32, 32))
    with pytest.raises(UsageError, match=r"no such file"):
        build_model("mobilenet_v3_small", 5, (32, 32), weights=str(tmp_path / "nothing.h5"))
    with pytest.raises(UsageError, match=r"trains from scratch"):
        build_model("edge", 5, (32, 32), weights=str(mobilenet_file))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match=r"expected a Keras weights file"):
        build_model("mobilenet_v3_small", 5, (32, 32), weights=str(tmp_path / "notes.txt"))
    with pytest.raises(ModelFormatError, match=r"not a weights file of the efficientnet_b0 backbone"):
        build_model("efficientnet_b0", 5, (32, 32), weights=str(mobilenet_file))


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_imagenet_without_a_network_says_how_to_get_the_file(gen_photos: Path, tmp_path: Path) -> None:
    proxy = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "no_proxy")}
    env.update(https_proxy=proxy, HTTPS_PROXY=proxy, KERAS_HOME=str(tmp_path / "keras"), TF_CPP_MIN_LOG_LEVEL="3")
    argv = ["train", "--model", "mobilenet_v3_small", "--weights", "imagenet", "--data", str(gen_photos)]
    argv += ["--out", str(tmp_path / "run"), "--epochs", "1", "--img-size", "32"]
    res = subprocess.run(
        [sys.executable, "-m", "deepclf.cli", *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: could not download the ImageNet weights of mobilenet_v3_small"), last
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in last and "--weights PATH" in last
    assert str(tmp_path / "keras" / "models") in last and "Traceback" not in res.stderr
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.slow  # ~40 s: keeps make test under 15 min (run by make test-slow)
def test_head_first_with_the_backbone_frozen_then_fine_tuning_resumes_in_its_phase(
    gen_photos: Path, mobilenet_file: Path, tmp_path: Path
) -> None:
    saved = _saved_backbone(mobilenet_file)
    seen: dict[str, Any] = {}

    class StopAfterPhaseOne(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                seen["backbone"] = [w.numpy() for w in self.model.get_layer(BACKBONE_LAYER).weights]
                seen["head"] = self.model.get_layer("logits").kernel.numpy()
                raise KeyboardInterrupt("interrupted after the frozen phase")

    run = tmp_path / "run"
    cfg = TrainConfig(
        model="mobilenet_v3_small",
        data_dir=str(gen_photos),
        run_dir=str(run),
        epochs=2,
        img_size=(32, 32),
        batch_size=16,
        weights=str(mobilenet_file),
    )
    with pytest.raises(KeyboardInterrupt):
        train(cfg, log=lambda s: None, verbose=0, extra_callbacks=[StopAfterPhaseOne()])
    assert _same(seen["backbone"], saved)  # phase 1 trained the head alone
    assert (run / "checkpoints" / "phase-1" / "training_metadata.json").is_file()

    lines: list[str] = []
    res = train(cfg, log=lines.append, verbose=0)
    assert any("resuming the interrupted run" in line and "after epoch 1" in line for line in lines)
    assert any(line.startswith("phase 2/2: epochs 2-2, learning rate 1e-05, backbone trainable") for line in lines)
    assert not any(line.startswith("phase 1/2") for line in lines)  # the finished phase is not run again
    assert len(res.history["accuracy"]) == 2 and not (run / "checkpoints").exists()
    model = tf.keras.models.load_model(run / "model.keras", compile=False)
    tuned = [w.numpy() for w in model.get_layer(BACKBONE_LAYER).weights]
    assert not _same(tuned, saved)  # phase 2 fine-tuned the backbone
    assert np.allclose(
        model.get_layer("logits").kernel.numpy(), seen["head"], atol=1e-3
    )  # resumed: Adam moves ~1e-5 a step
    config = json.loads((run / "config.json").read_text())
    assert config["weights"] == str(mobilenet_file) and len(config["recipe"]["phases"]) == 2
