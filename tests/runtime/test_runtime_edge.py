"""The edge guarantees: the runtime never imports TensorFlow, and ``deepclf predict`` works where TF is absent.

These run in fresh interpreters (subprocesses), because this test process has TensorFlow loaded already.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deepclf.cli import main

# A sitecustomize that makes `import tensorflow` (and tensorflow_serving, keras) fail the way it does in an
# environment with only the `edge` extra installed.
NO_TF_SITECUSTOMIZE = textwrap.dedent("""
    import sys

    class _NoTensorFlow:
        BLOCKED = ("tensorflow", "tensorflow_serving", "keras", "tf_keras")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"No module named {name!r} (blocked: edge-only environment)", name=name)
            return None

    sys.meta_path.insert(0, _NoTensorFlow())
""")


def _python(code: str, *, no_tf: bool, tmp_path: Path, args: list[str] | None = None):
    env = dict(os.environ)
    if no_tf:
        site = tmp_path / "no_tf_site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(NO_TF_SITECUSTOMIZE)
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code, *(args or [])], capture_output=True, text=True, env=env, timeout=120
    )


def test_runtime_import_and_litert_use_never_load_tensorflow(version_dir: Path, photos, tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import sys
        import deepclf.runtime
        from deepclf.runtime import load_runner
        import numpy as np
        for variant in ("fp32", "fp16", "dynamic", "int8"):
            with load_runner(sys.argv[1], variant=variant, num_threads=1) as r:
                r.classify(sys.argv[2:])
                r.run({"image_bytes": np.array([open(sys.argv[2], "rb").read()], dtype=object)},
                      "predict_image_bytes")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tensorflow_serving"))
        print("LOADED", loaded)
    """)
    proc = _python(code, no_tf=False, tmp_path=tmp_path, args=[str(version_dir), *map(str, photos[:2])])
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


def test_sitecustomize_really_blocks_tensorflow(tmp_path: Path) -> None:
    proc = _python("import tensorflow", no_tf=True, tmp_path=tmp_path)
    assert proc.returncode != 0 and "blocked: edge-only environment" in proc.stderr


def test_predict_works_without_tensorflow(version_dir: Path, photos, tmp_path: Path) -> None:
    code = "import sys; from deepclf.cli import main; sys.exit(main(sys.argv[1:]))"
    tflite = str(version_dir / "model_int8.tflite")
    proc = _python(code, no_tf=True, tmp_path=tmp_path, args=["predict", tflite, str(photos[0]), "--json"])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (
        doc[0]["file"] == str(photos[0])
        and doc[0]["label"] in json.loads((version_dir / "manifest.json").read_text())["labels"]
    )
    # the Keras format needs TF: a clear error naming the extra, not a traceback
    proc = _python(
        code,
        no_tf=True,
        tmp_path=tmp_path,
        args=["predict", str(version_dir), "--format", "savedmodel", str(photos[0])],
    )
    assert proc.returncode == 2
    assert "needs the 'tensorflow' package" in proc.stderr and "[tf]" in proc.stderr
    assert "Traceback" not in proc.stderr


SENTENCE = re.compile(r"^This image most likely belongs to (\w+) with a (\d+\.\d{2}) percent confidence\.$")


def test_predict_prints_the_tutorial_sentence(version_dir: Path, run_dir: Path, photos, capsys) -> None:
    assert main(["predict", str(version_dir), str(photos[0])]) == 0
    line = capsys.readouterr().out.strip()
    m = SENTENCE.match(line)
    assert m, line
    labels = json.loads((version_dir / "manifest.json").read_text())["labels"]
    assert m.group(1) in labels and 0 < float(m.group(2)) <= 100

    # the Keras run gives the same answer as the fp32 TFLite (scores within 1e-4, i.e. 0.01 percent)
    assert main(["predict", str(run_dir), str(photos[0])]) == 0
    k = SENTENCE.match(capsys.readouterr().out.strip())
    assert k and k.group(1) == m.group(1) and abs(float(k.group(2)) - float(m.group(2))) <= 0.011


def test_predict_top_k_and_many_images(version_dir: Path, photos, capsys) -> None:
    assert (
        main(
            [
                "predict",
                str(version_dir),
                "--variant",
                "int8",
                "--threads",
                "1",
                "--top-k",
                "3",
                str(photos[0]),
                str(photos[1]),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * (1 + 3)
    assert lines[0].startswith(f"{photos[0]}: This image most likely belongs to ")
    assert re.match(r"^  1\. \w+ +\d+\.\d{2}%$", lines[1]) and lines[3].lstrip().startswith("3.")
    assert lines[4].startswith(f"{photos[1]}: ")


def test_predict_json(version_dir: Path, photos, capsys) -> None:
    assert main(["predict", str(version_dir), str(photos[0]), str(photos[1]), "--json", "--top-k", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["file"] for d in doc] == [str(photos[0]), str(photos[1])]
    for d in doc:
        assert set(d) == {"file", "label", "index", "score", "top_k"}
        assert len(d["top_k"]) == 2 and d["top_k"][0] == {"label": d["label"], "index": d["index"], "score": d["score"]}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{ver}", "missing.jpg"], "image file not found: missing.jpg"),
        (["{ver}", "{img}", "--top-k", "0"], "--top-k must be at least 1"),
        (["{ver}", "{img}", "--threads", "0"], "--threads must be at least 1"),
        (["{ver}/nowhere", "{img}"], "model path not found"),
        (["{ver}", "{ver}/manifest.json"], "not a decodable image"),
    ],
)
def test_predict_bad_input_is_one_error_line(version_dir: Path, photos, capsys, argv, message) -> None:
    argv = [a.format(ver=version_dir, img=photos[0]) for a in argv]
    assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
