"""The `perpixel` command. Generic verbs work for every task, dispatching on the recipe's
`task:` or the checkpoint's: train, evaluate, predict, export. Tasks add their own verbs
(`perpixel demo`, `perpixel edges bench | plot | import-hed`)."""

from __future__ import annotations

import argparse
import shlex
import sys

from perpixel.errors import Interrupted, PerpixelError

EXAMPLES = {
    "train": "examples:\n  perpixel train synthetic_unet                 # a packaged recipe (configs/)\n"
    "  perpixel train configs/segmentation/camvid_unet.yaml -o trainer.max_epochs=20 -o data.batch_size=4\n"
    "  perpixel train camvid_unet --resume           # continue an interrupted run\n"
    "  perpixel train synthetic_mask_rcnn            # instances + panoptic (task: panoptic)\n"
    "  perpixel train bsds_unet_ds                   # an edge recipe (task: edges)\n"
    "  perpixel train camvid_unet --devices 4 --strategy ddp",
    "evaluate": "examples:\n  perpixel evaluate runs/camvid_unet/checkpoints/best.ckpt ../shared/data/camvid --split test\n"
    "  perpixel evaluate best.ckpt my_data/ --split val --out reports/val   # images/ + masks/ layout\n"
    "  perpixel evaluate best.ckpt synthetic --split val\n"
    "  perpixel evaluate hed ../shared/data/bsds500 --split test   # edges: the BSDS benchmark\n"
    "  perpixel evaluate best.ckpt my_data/ --tta flip,0.75,1,1.25   # test-time augmentation\n"
    "  perpixel evaluate runs/synthetic_panoptic_deeplab/checkpoints/best.ckpt cityscapes/ --split val",
    "predict": "examples:\n  perpixel predict runs/synthetic_unet/checkpoints/best.ckpt photos/ predictions/\n"
    "  perpixel predict hed ../shared/data/bsds500/images/test preds/hed   # pretrained HED\n"
    "  perpixel predict canny photos/ preds/canny                          # classic baseline\n"
    "  perpixel predict best.ckpt big_photos/ preds/ --window 512 512 --overlap 0.25 --tta flip\n"
    "  perpixel predict best.ckpt panoramas/ preds/ --max-pixels 400000000   # past 150 Mpx",
    "export": "examples:\n  perpixel export runs/synthetic_unet/checkpoints/best.ckpt model.onnx\n"
    "  perpixel export runs/bsds_unet_ds/checkpoints/last.ckpt edges.onnx",
}


def add(sub, name: str, help: str, example: str | None = None) -> argparse.ArgumentParser:
    """A subcommand with its help, description and example epilog."""
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _hw(q: argparse.ArgumentParser) -> None:
    q.add_argument("--accelerator", default=None, help="cpu, gpu or auto")
    q.add_argument("--devices", default=None, help="number of devices (e.g. 2) or 'auto'")
    q.add_argument("--strategy", default=None, help="auto, ddp, ddp_spawn, ...")


def _inference(q: argparse.ArgumentParser) -> None:
    from perpixel.data.images import MAX_PIXELS

    q.add_argument(
        "--window",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="segmentation: predict in overlapping H x W windows (default: the whole image up "
        "to 1 Mpx, past it windows of the training crop, else 512 x 512)",
    )
    q.add_argument(
        "--overlap",
        type=float,
        metavar="F",
        help="segmentation: fraction of a window shared with each neighbour (default 0.25)",
    )
    q.add_argument(
        "--tta",
        metavar="SPEC",
        help="segmentation: test-time augmentation, softmax probabilities averaged: 'flip' "
        "(left-right), scales '0.75,1,1.25', or both 'flip,0.75,1,1.25'",
    )
    q.add_argument(
        "--crf",
        nargs="?",
        const="",
        metavar="K=V,...",
        help="segmentation: refine with the dense CRF (DeepLab's), parameters from the "
        "recipe's `crf:` section; change some with e.g. --crf iterations=5,theta_alpha=80",
    )
    q.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help=f"refuse images of more than N pixels (default {MAX_PIXELS:,})",
    )


def inference_flags(args: argparse.Namespace, task: str) -> None:
    """Refuse --window / --overlap / --tta for a checkpoint (or built-in) of a task other
    than segmentation."""
    flags = ("window", "overlap", "tta", "crf")
    given = [f"--{k}" for k in flags if getattr(args, k, None) is not None]
    if given and task != "segmentation":
        raise PerpixelError(
            f"{' '.join(given)}: for segmentation checkpoints only; {args.checkpoint} is for {task}"
        )


def hw_overrides(args: argparse.Namespace) -> dict:
    """`trainer:` values given by --accelerator / --devices / --strategy."""
    t = {}
    for k in ("accelerator", "devices", "strategy"):
        v = getattr(args, k, None)
        if v is not None:
            t[k] = int(v) if k == "devices" and str(v).isdigit() else v
    return t


def _parser() -> argparse.ArgumentParser:
    from perpixel.tasks import TASKS, get_task

    p = argparse.ArgumentParser(
        prog="perpixel",
        description="Image-to-image mapping by per-pixel classification. Tasks: "
        + "; ".join(f"{n} ({get_task(n).summary})" for n in TASKS)
        + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    q = add(sub, "train", "Train a model from a YAML recipe (any task).", EXAMPLES["train"])
    q.add_argument("config", help="YAML recipe or a packaged recipe name (see configs/)")
    q.add_argument("--out", default=None, help="run folder (default: the recipe's `out`)")
    q.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    q.add_argument(
        "--find-lr",
        action="store_true",
        help="run Lightning's learning-rate finder (100 batches), plot OUT/lr_find.png, "
        "print the suggested optim.lr; trains nothing",
    )
    q.add_argument(
        "-o", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a value"
    )
    _hw(q)
    q.set_defaults(func=cmd_train)

    q = add(
        sub,
        "evaluate",
        "Evaluate a checkpoint on a data split; write a report.",
        EXAMPLES["evaluate"],
    )
    q.add_argument("checkpoint", help="a checkpoint, or a built-in (hed, canny, sobel)")
    q.add_argument(
        "data",
        help="segmentation: 'synthetic', a CamVid root or a folder with "
        "images/ + masks/; edges: a BSDS500 root or images/ + groundTruth/; panoptic: "
        "'synthetic', a Cityscapes / KITTI / VOC / ADE20K / COCO (panoptic) root or a folder "
        "with images/ + masks/ + instances/",
    )
    q.add_argument(
        "--split",
        default=None,
        help="split to evaluate (default: test; a folder without splits is read whole)",
    )
    q.add_argument("--out", default=None, help="report folder (default: beside the checkpoint)")
    q.add_argument("--batch-size", type=int, default=None)
    q.add_argument(
        "--overlays", type=int, default=6, help="segmentation: images in the overlay grid"
    )
    q.add_argument("--thresholds", type=int, default=99, help="edges: benchmark thresholds (99)")
    _inference(q)
    _hw(q)
    q.set_defaults(func=cmd_evaluate)

    q = add(
        sub,
        "predict",
        "Predict a folder of images (class-id maps or edge maps).",
        EXAMPLES["predict"],
    )
    q.add_argument("checkpoint", help="a checkpoint, or a built-in (hed, canny, sobel)")
    q.add_argument("images", help="an image file or a folder of images")
    q.add_argument("out", help="output folder")
    q.add_argument("--alpha", type=float, default=0.5, help="segmentation: overlay opacity")
    q.add_argument("--device", default="cpu")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    _inference(q)
    q.set_defaults(func=cmd_predict)

    q = add(
        sub,
        "export",
        "Export a checkpoint to ONNX (dynamic size), checked with ONNX Runtime.",
        EXAMPLES["export"],
    )
    q.add_argument("checkpoint", help="a checkpoint (any task), or hed")
    q.add_argument("onnx", help="output .onnx path")
    q.add_argument("--opset", type=int, default=17)
    q.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime comparison")
    q.set_defaults(func=cmd_export)

    for name in TASKS:
        task = get_task(name)
        if task.add_commands is not None:
            task.add_commands(sub, add)
    return p


def cmd_train(args: argparse.Namespace) -> None:
    from perpixel.config import merge
    from perpixel.tasks import get_task, load_recipe

    conf = load_recipe(args.config, args.set)
    extra: dict = {"trainer": hw_overrides(args)}
    if args.out:
        extra["out"] = args.out
    conf = merge(conf, extra)
    recipe = shlex.join([args.config, *[x for o in args.set for x in ("-o", o)]])
    r = get_task(conf["task"]).train(conf, args.resume, recipe=recipe, find_lr=args.find_lr)
    if args.find_lr:
        if r["is_global_zero"] and r["lr"] is None:
            print("the learning-rate finder found no clear rate (too few batches?)")
        elif r["is_global_zero"]:
            lr = f"{r['lr']:.2g}"
            print(f"suggested optim.lr: {lr} (where the loss falls fastest; plot {r['plot']})")
            print(f"train with:\n  perpixel train {recipe} -o optim.lr={lr}")
        return
    if r["is_global_zero"]:
        score = "no validation ran" if r["best_score"] is None else f"{r['best_score']:.4f}"
        print(f"best {r['monitor']}: {score}  (trained {r['seconds']:.0f} s)")
        print(f"best checkpoint: {r['best']}\nlast checkpoint: {r['last']}")
        print(f"report: {r['report']}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from perpixel.data.images import pixel_limit
    from perpixel.tasks import open_checkpoint

    task, target = open_checkpoint(args.checkpoint)
    inference_flags(args, task.name)
    args.hw = hw_overrides(args)
    with pixel_limit(args.max_pixels):
        task.evaluate(target, args)


def cmd_predict(args: argparse.Namespace) -> None:
    from perpixel.data.images import pixel_limit
    from perpixel.tasks import open_checkpoint

    task, target = open_checkpoint(args.checkpoint)
    inference_flags(args, task.name)
    predictor = task.predictor(target, args.device)
    if task.name == "segmentation":
        from perpixel.tasks.segmentation.predict import parse_crf

        predictor.set_inference(  # type: ignore[attr-defined]
            args.window, args.overlap, args.tta, parse_crf(args.crf)
        )
    if hasattr(predictor, "alpha"):
        predictor.alpha = args.alpha
    with pixel_limit(args.max_pixels):
        written = predictor.predict_folder(args.images, args.out, progress=not args.no_progress)
    print(f"{len(written)} image(s) -> {args.out} ({predictor.outputs})")


def cmd_export(args: argparse.Namespace) -> None:
    from perpixel.engine.export import export_onnx
    from perpixel.engine.module import TaskModule
    from perpixel.tasks import open_checkpoint

    _, target = open_checkpoint(args.checkpoint)
    if not isinstance(target, TaskModule):
        raise PerpixelError(f"{args.checkpoint}: a classic detector, no network to export")
    r = export_onnx(target.export_model(), args.onnx, opset=args.opset, check=not args.no_check)
    msg = f"wrote {r['path']}"
    if "max_abs_diff" in r:
        msg += f"; ONNX Runtime matches PyTorch (max |diff| {r['max_abs_diff']:.1e} at input {r['checked_size']})"
    print(msg)


def interrupted_message(e: KeyboardInterrupt, command: str, argv: list[str]) -> str:
    """What Ctrl-C prints: where the last checkpoint is and the command that continues."""
    if not isinstance(e, Interrupted):
        return f"perpixel {command}: interrupted"
    if e.last is None:
        again = shlex.join(["perpixel", *[a for a in argv if a != "--resume"]])
        return (
            "perpixel train: interrupted before the first epoch ended; nothing to resume. "
            f"Start again with:\n  {again}"
        )
    resume = shlex.join(["perpixel", *argv, *([] if "--resume" in argv else ["--resume"])])
    return (
        f"perpixel train: interrupted; the last checkpoint is {e.last} (end of epoch "
        f"{e.epoch}/{e.max_epochs}). Continue with:\n  {resume}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except PerpixelError as e:
        print(f"perpixel {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(interrupted_message(e, args.command, argv), file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
