"""``deepclf data check PATH`` and ``deepclf data find``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="find, download and check datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    c = dsub.add_parser("check", help="report class counts, unreadable/non-image files, duplicates, tiny images")
    c.add_argument("path", help="a folder with one sub-folder per class")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(func=_check)

    f = dsub.add_parser("find", help="print where the flowers dataset is (--data, DEEPCLF_DATA, Keras cache, download)")
    f.add_argument("--data", default=None, help="a folder with one sub-folder per class")
    f.add_argument("--no-download", action="store_true", help="do not try to download the official archive")
    f.set_defaults(func=_find)

    s = dsub.add_parser("split", help="print the tutorial's 80/20 train/validation split sizes per class")
    s.add_argument("path")
    s.add_argument("--seed", type=int, default=123)
    s.add_argument("--validation-split", type=float, default=0.2)
    s.set_defaults(func=_split)


def _check(args: argparse.Namespace) -> int:
    from deepclf.data.check import check_folder

    report = check_folder(args.path)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return 0 if report.ok else 1


def _find(args: argparse.Namespace) -> int:
    from deepclf.data.discover import resolve_dataset

    print(resolve_dataset(args.data, download=not args.no_download))
    return 0


def _split(args: argparse.Namespace) -> int:
    from collections import Counter

    from deepclf.data.split import split_files

    for subset in ("training", "validation"):
        _, labels, classes = split_files(args.path, subset, validation_split=args.validation_split, seed=args.seed)
        counts = Counter(labels)
        print(f"{subset}: {len(labels)} files  " + "  ".join(f"{c}={counts[i]}" for i, c in enumerate(classes)))
    return 0
