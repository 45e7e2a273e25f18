"""``deepclf convert``: a training run -> SavedModel + four TFLite variants in a TF Serving version folder.

    deepclf convert runs/basic-001 --out models                    # models/flowers/<next version>/
    deepclf convert runs/basic-001 --out models --version 3 --force
    deepclf convert runs/basic-001 --out models --data flower_photos --parity-images 200

Registration is TF-free; the handler imports TensorFlow.
"""

from __future__ import annotations

import argparse

from deepclf.variants import VARIANT_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``deepclf convert``."""
    from deepclf.convert.pipeline import (  # TF-free module; keeps the defaults in one place
        DEFAULT_CALIBRATION_STEPS,
        DEFAULT_MIN_AGREEMENT,
        DEFAULT_PARITY_IMAGES,
    )

    p = subparsers.add_parser(
        "convert",
        help="export a training run to SavedModel + fp32/fp16/dynamic/int8 TFLite (TF Serving layout)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run folder (holds model.keras and manifest.json)")
    p.add_argument("--out", required=True, metavar="MODELS_DIR", help="models folder; writes MODELS_DIR/NAME/VERSION")
    p.add_argument("--name", default=None, help="model name (default: the run manifest's name, e.g. flowers)")
    p.add_argument("--version", type=int, default=None, metavar="N", help="version number (default: next free)")
    p.add_argument("--force", action="store_true", help="replace an existing version folder")
    p.add_argument(
        "--data", default=None, metavar="PATH", help="image folder for calibration/parity (default: the run's data_dir)"
    )
    p.add_argument(
        "--calibration-steps",
        type=int,
        default=DEFAULT_CALIBRATION_STEPS,
        metavar="N",
        help=f"training images used to calibrate int8 (default {DEFAULT_CALIBRATION_STEPS})",
    )
    p.add_argument(
        "--parity-images",
        type=int,
        default=DEFAULT_PARITY_IMAGES,
        metavar="N",
        help=f"validation images for the parity check (default {DEFAULT_PARITY_IMAGES})",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        metavar="F",
        help=f"minimum top-1 agreement with Keras of every variant (default {DEFAULT_MIN_AGREEMENT})",
    )
    p.add_argument(
        "--variants",
        default=",".join(VARIANT_NAMES),
        metavar="LIST",
        help=f"comma-separated TFLite variants (default {','.join(VARIANT_NAMES)})",
    )
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    """Handler of ``deepclf convert``."""
    from deepclf.convert.pipeline import ConvertOptions, convert_run, format_report

    opts = ConvertOptions(
        name=args.name,
        version=args.version,
        force=args.force,
        data_dir=args.data,
        calibration_steps=args.calibration_steps,
        parity_images=args.parity_images,
        min_agreement=args.min_agreement,
        variants=[v.strip() for v in args.variants.split(",") if v.strip()],
    )
    result = convert_run(args.run_dir, args.out, opts)
    print(format_report(result.report))
    print(f"\npublished {result.version_dir} (report: {result.version_dir / 'conversion_report.json'})")
    return 0
