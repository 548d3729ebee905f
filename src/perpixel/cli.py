"""The `perpixel` command: demo, train, evaluate, predict, export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perpixel.cli_edges import register as register_edges
from perpixel.errors import PerpixelError

EXAMPLES = {
    "demo": "example:\n  perpixel demo --out reports/demo",
    "train": "examples:\n  perpixel train configs/synthetic_unet.yaml\n"
    "  perpixel train configs/camvid_unet.yaml -o trainer.max_epochs=20 -o data.batch_size=4\n"
    "  perpixel train configs/camvid_unet.yaml --resume          # continue an interrupted run\n"
    "  perpixel train configs/camvid_unet.yaml --devices 4 --strategy ddp",
    "evaluate": "examples:\n  perpixel evaluate runs/camvid_unet/checkpoints/best.ckpt ../shared/data/camvid --split test\n"
    "  perpixel evaluate best.ckpt my_data/ --split val --out reports/val   # images/ + masks/ layout\n"
    "  perpixel evaluate best.ckpt synthetic --split val",
    "predict": "example:\n  perpixel predict runs/synthetic_unet/checkpoints/best.ckpt photos/ predictions/",
    "export": "example:\n  perpixel export runs/synthetic_unet/checkpoints/best.ckpt model.onnx",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="perpixel",
        description="Image-to-image mapping by per-pixel classification.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def hw(q: argparse.ArgumentParser) -> None:
        q.add_argument("--accelerator", default=None, help="cpu, gpu or auto")
        q.add_argument("--devices", default=None, help="number of devices (e.g. 2) or 'auto'")
        q.add_argument("--strategy", default=None, help="auto, ddp, ddp_spawn, ...")

    q = add("demo", "Train a U-Net and a linear baseline on the synthetic world; write a report.")
    q.add_argument("--out", default="reports/demo", help="report folder (default: reports/demo)")
    q.add_argument("--epochs", type=int, default=None, help="U-Net epochs (default: the recipe's)")
    q.add_argument("--train-samples", type=int, default=None, help="synthetic training images")

    q = add("train", "Train a model from a YAML recipe.")
    q.add_argument("config", help="YAML recipe (see configs/) or a packaged recipe name")
    q.add_argument("--out", default=None, help="run folder (default: the recipe's `out`)")
    q.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    q.add_argument(
        "-o",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value",
    )
    hw(q)

    q = add("evaluate", "Evaluate a checkpoint on a dataset split and write a report.")
    q.add_argument("checkpoint")
    q.add_argument("data", help="'synthetic', a CamVid root, or a folder with images/ + masks/")
    q.add_argument("--split", default="test", help="split to evaluate (default: test)")
    q.add_argument("--out", default=None, help="report folder (default: beside the checkpoint)")
    q.add_argument("--batch-size", type=int, default=None)
    q.add_argument("--overlays", type=int, default=6, help="images in the overlay grid")
    hw(q)

    q = add("predict", "Segment a folder of images: class-id PNGs, colour PNGs and overlays.")
    q.add_argument("checkpoint")
    q.add_argument("images", help="an image file or a folder of images")
    q.add_argument("out", help="output folder")
    q.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    q.add_argument("--device", default="cpu")

    q = add("export", "Export a checkpoint to ONNX (dynamic size), checked with ONNX Runtime.")
    q.add_argument("checkpoint")
    q.add_argument("onnx", help="output .onnx path")
    q.add_argument("--opset", type=int, default=17)
    q.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime comparison")

    register_edges(sub)  # perpixel edges {train, predict, import-hed, bench}
    return p


def _hw_overrides(args: argparse.Namespace) -> dict:
    t = {}
    for k in ("accelerator", "devices", "strategy"):
        v = getattr(args, k, None)
        if v is not None:
            t[k] = int(v) if k == "devices" and str(v).isdigit() else v
    return t


def data_from_arg(arg: str, base: dict, split: str) -> tuple[dict, str]:
    """A config `data` section and the split name for `perpixel evaluate DATA --split SPLIT`."""
    if arg == "synthetic":
        return {**base, "kind": "synthetic"}, split
    root = Path(arg)
    if not root.is_dir():
        raise PerpixelError(f"{root}: data folder not found")
    if any((root / f"{s}.txt").is_file() for s in ("train", "val", "test")):
        return {**base, "kind": "camvid", "root": str(root)}, split
    flat = (root / "images").is_dir()  # images/ + masks/ directly under root: no splits
    return {**base, "kind": "folder", "root": str(root)}, "." if flat else split


def cmd_demo(args: argparse.Namespace) -> None:
    from perpixel.tasks.demo import run_demo
    from perpixel.viz import summary_table

    over: dict = {}
    if args.epochs is not None:
        over["trainer"] = {"max_epochs": args.epochs}
    if args.train_samples is not None:
        over["data"] = {"synthetic": {"num_train": args.train_samples}}
    res = run_demo(args.out, over)
    info = res.pop("info")
    print()
    print(summary_table(res))
    print(f"\nwall time {info['wall_seconds']:.0f} s on {info['hardware']}")
    print(f"report: {Path(args.out) / 'report.html'}")


def resolve_recipe(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    packaged = Path(__file__).parent / "configs" / f"{Path(name).stem}.yaml"
    if packaged.is_file():
        return packaged
    raise PerpixelError(
        f"{name}: config file not found (packaged recipes: "
        f"{sorted(p.stem for p in packaged.parent.glob('*.yaml'))})"
    )


def cmd_train(args: argparse.Namespace) -> None:
    from perpixel.tasks.config import load_config, merge
    from perpixel.tasks.train import train

    conf = load_config(resolve_recipe(args.config), args.set)
    extra: dict = {"trainer": _hw_overrides(args)}
    if args.out:
        extra["out"] = args.out
    conf = merge(conf, extra)
    r = train(conf, resume=args.resume)
    if r["is_global_zero"]:
        print(f"best val mIoU {r['best_val_miou']}  ({r['seconds']:.0f} s)")
        print(f"best checkpoint: {r['best']}\nlast checkpoint: {r['last']}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    import lightning as L

    from perpixel.tasks.predictor import Segmenter, load_task
    from perpixel.tasks.report import overlay_rows, write_report
    from perpixel.tasks.train import evaluate
    from perpixel.viz import summary_table

    task = load_task(args.checkpoint)
    data, split = data_from_arg(args.data, task.config["data"], args.split)
    hw = {"accelerator": "auto", "devices": 1, "strategy": "auto", **_hw_overrides(args)}
    m = evaluate(task, data, split, batch_size=args.batch_size, **hw)
    if L.fabric.utilities.rank_zero.rank_zero_only.rank != 0:
        return
    out = Path(args.out) if args.out else Path(args.checkpoint).parent.parent / f"eval_{args.split}"
    from perpixel.tasks.data import build_dataset

    rows = overlay_rows(
        Segmenter(task), build_dataset({**data, "test_split": split}, "test"), args.overlays
    )
    name = Path(args.checkpoint).stem
    write_report(
        out,
        f"Evaluation of {args.checkpoint} on {args.data} ({args.split})",
        {name: m},
        task.taxonomy,
        overlays=rows,
        extra={"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split},
    )
    print(summary_table({name: m}))
    print(f"report: {out / 'report.html'}")


def cmd_predict(args: argparse.Namespace) -> None:
    from perpixel.tasks.predictor import load

    written = load(args.checkpoint, args.device).predict_folder(args.images, args.out, args.alpha)
    print(
        f"{len(written)} image(s) -> {args.out} (NAME.png class ids, NAME_color.png, NAME_overlay.png)"
    )


def cmd_export(args: argparse.Namespace) -> None:
    from perpixel.tasks.export import export_onnx
    from perpixel.tasks.predictor import load_task

    r = export_onnx(
        load_task(args.checkpoint).model, args.onnx, opset=args.opset, check=not args.no_check
    )
    msg = f"wrote {r['path']}"
    if "max_abs_diff" in r:
        msg += f"; ONNX Runtime matches PyTorch (max |diff| {r['max_abs_diff']:.1e} at input {r['checked_size']})"
    print(msg)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handlers = {
            "demo": cmd_demo,
            "train": cmd_train,
            "evaluate": cmd_evaluate,
            "predict": cmd_predict,
            "export": cmd_export,
        }
        (getattr(args, "func", None) or handlers[args.command])(args)  # edges: args.func
    except PerpixelError as e:
        print(f"perpixel {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; `perpixel train ... --resume` continues a training run", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
