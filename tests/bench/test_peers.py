"""The peer servers (deepclf.bench.peers): each installed peer serves the session's converted model over TF
Serving's REST row format and answers exactly what the LiteRT runner computes for the same ``model.tflite``.

Peers run from their own Python (``make peers-venv`` or ``$DEEPCLF_PEERS_PYTHON``; KServe cannot share deepclf's
venv); a peer whose packages are missing is skipped with the one line that says what to install. Requests go
through ``PeerTarget`` / ``RowRestClient``: the bytes ``RestClient`` sends (``deepclf.protocol.rest``, row format),
decoded by ``rest.decode_predict_response``. ``RestClient`` itself cannot call the peers: it names a single unnamed
output from ``GET .../metadata``, a TF Serving route neither peer has.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from deepclf.bench.peers import PEERS, launch, skip_reason
from deepclf.bench.peers.target import PeerTarget
from deepclf.bench.targets import Batch
from deepclf.runtime import load_runner


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(PEERS))
def test_peer_answers_what_the_runner_computes(kind: str, shared_version_dir: Path) -> None:
    reason = skip_reason(kind)
    if reason:
        pytest.skip(reason)
    runner = load_runner(shared_version_dir, variant="fp32")
    h, w, _ = runner.manifest.input.shape
    x = np.random.default_rng(7).uniform(0, 255, (2, h, w, 3)).astype(np.float32)
    expected = runner.run({"image": x})["probabilities"]

    url, stop = launch(kind, shared_version_dir / "model.tflite", "flowers", threads=2)
    try:
        target = PeerTarget(kind, url, "flowers", input_size=(h, w))
        with target:
            got = target.predict(Batch(x))
    finally:
        stop()
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_missing_peer_is_one_clear_line(tmp_path: Path) -> None:
    # A Python without the peers' packages: a venv-less interpreter path that does not exist counts as one too.
    missing = skip_reason("kserve", python=tmp_path / "no-such-python")
    assert missing is not None
    assert missing.startswith("peer kserve skipped: `pip install '.[peers]'` (kserve, ai_edge_litert, numpy not")
    if importlib.util.find_spec("kserve") is None:  # deepclf's own venv never has kserve (protobuf pins)
        line = skip_reason("kserve", python=sys.executable)
        assert line is not None and "(kserve not installed in" in line and "\n" not in line
    with pytest.raises(ValueError, match="unknown peer"):
        skip_reason("torchserve")
