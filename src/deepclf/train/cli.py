"""``deepclf train``: train a registered model on a folder of class sub-folders into a run folder."""

from __future__ import annotations

import argparse

from deepclf.errors import UsageError


def parse_img_size(values: list[int]) -> tuple[int, int]:
    """``--img-size 180`` or ``--img-size 180 240`` -> (height, width)."""
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise UsageError(f"--img-size takes one or two integers (HEIGHT [WIDTH]), got {values}")


def register(sub: argparse._SubParsersAction) -> None:
    from deepclf.train.models import MODELS  # TF-free: the registry module imports TF only when building
    from deepclf.train.strategy import DEFAULT_PEER_TIMEOUT, STRATEGIES  # TF-free too

    p = sub.add_parser("train", help="train a registered model (basic, augmented, edge, ...) and write a run folder")
    p.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="basic",
        help="architecture (default: basic); " + "; ".join(f"{n}: {s.description}" for n, s in MODELS.items()),
    )
    p.add_argument(
        "--data",
        default=None,
        help="dataset folder (class sub-folders); default: DEEPCLF_DATA, the Keras cache, or a download",
    )
    p.add_argument("--out", default=None, help="run folder (default: runs/<model>); rerun it to resume")
    defaults = ", ".join(f"{n} {s.recipe.epochs}" for n, s in MODELS.items())
    sizes = ", ".join(f"{n} {s.recipe.img_size[0]}" for n, s in MODELS.items())
    batches = ", ".join(f"{n} {s.recipe.batch_size}" for n, s in MODELS.items())
    p.add_argument("--epochs", type=int, default=None, help=f"default: the model's schedule ({defaults})")
    p.add_argument(
        "--img-size", type=int, nargs="+", default=None, metavar="N", help=f"HEIGHT [WIDTH] (default: {sizes})"
    )
    p.add_argument("--batch-size", type=int, default=None, help=f"global batch (default: {batches})")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument(
        "--strategy",
        default="auto",
        choices=list(STRATEGIES),
        help="tf.distribute strategy (auto: multi-worker with TF_CONFIG, mirrored with several GPUs)",
    )
    p.add_argument(
        "--peer-timeout",
        type=float,
        default=DEFAULT_PEER_TIMEOUT,
        metavar="SECONDS",
        help="multi-worker only: give up (a message, then exit status 137) when the other workers have not joined "
        f"within this many seconds (default {DEFAULT_PEER_TIMEOUT:g})",
    )
    transfer = ", ".join(n for n, s in MODELS.items() if s.transfer)
    p.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|PATH",
        help=f"backbone weights of the transfer-learning models ({transfer}): 'imagenet' (downloaded by Keras "
        "into ~/.keras/models where a network allows) or a weights file (.h5 / .weights.h5, no classifier top)",
    )
    p.add_argument("--name", default="flowers", help="model name recorded in the manifest")
    p.add_argument("--force", action="store_true", help="train again into a folder that holds a finished run")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from deepclf.data.discover import resolve_dataset
    from deepclf.train.trainer import TrainConfig, train

    data = resolve_dataset(args.data)
    cfg = TrainConfig(
        model=args.model,
        data_dir=str(data),
        run_dir=args.out or f"runs/{args.model}",
        epochs=args.epochs,
        img_size=parse_img_size(args.img_size) if args.img_size else None,
        batch_size=args.batch_size,
        seed=args.seed,
        validation_split=args.validation_split,
        strategy=args.strategy,
        name=args.name,
        weights=args.weights,
    )
    if args.peer_timeout <= 0:
        raise UsageError(f"--peer-timeout must be a positive number of seconds, got {args.peer_timeout:g}")
    result = train(cfg, force=args.force, peer_timeout=args.peer_timeout)
    if not result.artifacts:  # a non-chief worker: the chief wrote the run, and said so
        return 0
    print(f"run folder: {result.run_dir}")
    for name, path in sorted(result.artifacts.items()):
        print(f"  {name:<17} {path}")
    return 0
