"""deepclf.variants: one table of TFLite variants, one name each, and every layer reading it (convert, runtime,
server flag, deployment, manifest). The bench spec's ``variant=`` is covered in tests/bench/test_targets.py."""

from __future__ import annotations

import pytest

from deepclf.cli import build_parser
from deepclf.errors import ModelFormatError, UsageError
from deepclf.manifest import TFLITE_FILES as MANIFEST_FILES
from deepclf.manifest import Manifest
from deepclf.variants import (
    DEFAULT_VARIANT,
    TFLITE_FILES,
    VARIANT_NAMES,
    VARIANTS,
    canonical_variant,
    parse_variant,
    variant_arg,
    variant_of_file,
)


def test_the_table() -> None:
    assert VARIANT_NAMES == ("fp32", "fp16", "dynamic", "int8") and DEFAULT_VARIANT == "fp32"
    assert TFLITE_FILES == {
        "fp32": "model.tflite",
        "fp16": "model_fp16.tflite",
        "dynamic": "model_dynamic.tflite",
        "int8": "model_int8.tflite",
    }
    assert MANIFEST_FILES is TFLITE_FILES  # the manifest re-exports the table, no second copy
    assert [v.input_dtype for v in VARIANTS.values()] == ["float32", "float32", "float32", "uint8"]
    assert VARIANTS["int8"].quantization() == {"weights": "int8", "activations": "int8", "io": "uint8"}
    assert [v.runner_format for v in VARIANTS.values()] == [
        "tflite-fp32",
        "tflite-fp16",
        "tflite-dynamic",
        "tflite-int8",
    ]
    assert all(v.description for v in VARIANTS.values())
    assert {variant_of_file(f) for f in TFLITE_FILES.values()} == set(VARIANT_NAMES)
    assert variant_of_file("other.tflite") is None


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_old_and_new_spellings_mean_one_variant(name: str) -> None:
    assert canonical_variant(name) == parse_variant(name) == variant_arg(name) == name
    assert canonical_variant(f"tflite-{name}") == parse_variant(f"tflite-{name}") == name
    assert Manifest(labels=["a"]).variant_file(f"tflite-{name}") == TFLITE_FILES[name]


@pytest.mark.parametrize("bad", ["int4", "INT8", "tflite-", "tflite", "tflite-int4", "", " int8", None])
def test_unknown_names_are_refused_with_the_list(bad: object) -> None:
    assert canonical_variant(bad) is None  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"unknown TFLite variant .*expected one of fp32, fp16, dynamic, int8"):
        parse_variant(bad)  # type: ignore[arg-type]
    if isinstance(bad, str):
        assert variant_arg(bad) == bad  # passed through for argparse's choices to refuse
    with pytest.raises(ModelFormatError, match="unknown TFLite variant"):
        Manifest(labels=["a"]).variant_file(bad)  # type: ignore[arg-type]


def test_every_layer_takes_its_names_from_the_table() -> None:
    from deepclf.convert.pipeline import ConvertOptions
    from deepclf.deploy.edge import EDGE_FORMATS, EdgeOptions
    from deepclf.runtime.base import FORMATS
    from deepclf.runtime.loader import FORMAT_CHOICES
    from deepclf.serving.config import SERVE_FORMATS, ServerConfig

    runner_formats = tuple(v.runner_format for v in VARIANTS.values())
    assert ("keras", "savedmodel", *runner_formats) == FORMATS
    assert (*FORMATS, "tflite") == FORMAT_CHOICES
    assert (*VARIANT_NAMES, "savedmodel") == SERVE_FORMATS and EDGE_FORMATS == VARIANT_NAMES
    assert ServerConfig(model_base_path="m", format="tflite-int8").format == "int8"  # shown canonical
    assert EdgeOptions(format="tflite-dynamic").format == "dynamic"
    with pytest.raises(UsageError, match="--format must be one of fp32, fp16, dynamic, int8, savedmodel"):
        ServerConfig(model_base_path="m", format="int4")

    opts = ConvertOptions(variants=["tflite-int8", "fp32", "int8"])
    opts.check()
    assert opts.variants == ("int8", "fp32")  # canonical, each once, in the order given
    assert ConvertOptions().variants == VARIANT_NAMES
    with pytest.raises(UsageError, match="--variants must name some of fp32, fp16, dynamic, int8"):
        ConvertOptions(variants=["int4"]).check()


@pytest.mark.parametrize(
    ("argv", "dest"),
    [
        (["serve", "--model_base_path", "m", "--format", "{}"], "format"),
        (["predict", "m", "--variant", "{}"], "variant"),
        (["deploy", "edge", "models", "--out", "o", "--format", "{}"], "format"),
    ],
)
def test_cli_flags_take_both_spellings_and_keep_one(argv: list[str], dest: str, capsys) -> None:
    parser = build_parser()
    for spelling in ("int8", "tflite-int8"):
        args = parser.parse_args([a.format(spelling) for a in argv])
        assert getattr(args, dest) == "int8"
    with pytest.raises(SystemExit):
        parser.parse_args([a.format("int4") for a in argv])
    error_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "invalid choice: 'int4'" in error_line and "'int8'" in error_line and "tflite-int8" not in error_line
