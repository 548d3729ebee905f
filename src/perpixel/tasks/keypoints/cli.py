"""`perpixel keypoints ...`: match two photographs, label a folder by homographic adaptation,
and the evaluation table; and what `perpixel evaluate` does for a keypoint checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from perpixel.errors import ConfigError, PerpixelError

EXAMPLES = {
    "match": "examples:\n  perpixel keypoints match a.jpg b.jpg --out matches.png\n"
    "  perpixel keypoints match a.jpg b.jpg --model runs/superpoint/checkpoints/best.ckpt --ratio 0.9",
    "adapt": "examples:\n  perpixel keypoints adapt runs/magicpoint/checkpoints/best.ckpt photos/ "
    "--out labels/ --num 100",
    "evaluate": "examples:\n  perpixel keypoints evaluate runs/superpoint/checkpoints/best.ckpt "
    "--pairs ../shared/data/bsds500/images/test --out reports/kp\n"
    "  perpixel keypoints evaluate best.ckpt --hpatches hpatches-sequences-release --out reports/hp",
}


def add_commands(subparsers, add) -> None:
    """Add the `keypoints` command group (`add(sub, name, help, example)` makes a subparser)."""
    kp = subparsers.add_parser(
        "keypoints",
        help="Interest points' own tools: match two images, homographic adaptation, evaluation.",
        description="Interest points (MagicPoint / SuperPoint): train, predict and export with "
        "the generic verbs; these are the task's own.",
    )
    sub = kp.add_subparsers(dest="keypoints_command", required=True)

    q = add(
        sub, "match", "Match two images; draw the matches and A's outline in B.", EXAMPLES["match"]
    )
    q.add_argument("image_a")
    q.add_argument("image_b")
    q.add_argument("--model", default=None, help="a keypoint checkpoint with descriptors")
    q.add_argument("--out", default="matches.png", help="picture to write (matches.png)")
    q.add_argument("--ratio", type=float, default=None, help="ratio test (e.g. 0.9); default off")
    q.add_argument("--ransac", choices=("auto", "kornia", "opencv"), default="auto")
    q.add_argument("--threshold", type=float, default=3.0, help="RANSAC inlier distance, px")
    q.add_argument("--max-size", type=int, default=640, help="resize so the long side <= this")
    q.set_defaults(func=cmd_match)

    q = add(
        sub,
        "adapt",
        "Label a folder of images by homographic adaptation (pseudo ground truth).",
        EXAMPLES["adapt"],
    )
    q.add_argument("checkpoint", help="a keypoint checkpoint (MagicPoint or SuperPoint)")
    q.add_argument("images", help="a folder of images")
    q.add_argument("--out", required=True, help="folder for NAME.npz label files")
    q.add_argument("--shape", type=int, nargs=2, default=None, help="H W (default: the recipe's)")
    q.add_argument("--num", type=int, default=100, help="homographies per image (100)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=cmd_adapt)

    q = add(
        sub,
        "evaluate",
        "Score checkpoints and the classic methods: shapes mAP and pair metrics, one table.",
        EXAMPLES["evaluate"],
    )
    q.add_argument("checkpoints", nargs="*", help="keypoint checkpoints (none: classic only)")
    q.add_argument("--out", required=True, help="folder for table.md, results.json, pictures/")
    q.add_argument("--shapes", type=int, default=500, help="synthetic test images (0: skip)")
    q.add_argument("--pairs", action="append", default=[], help="image folder -> warped pairs")
    q.add_argument("--limit", type=int, default=None, help="images per --pairs folder")
    q.add_argument("--hpatches", default=None, help="an HPatches or Oxford-layout root")
    q.add_argument("--shape", type=int, nargs=2, default=[240, 320], help="pair size H W")
    q.add_argument("--no-classic", action="store_true", help="only the checkpoints")
    q.add_argument("--ransac", choices=("auto", "kornia", "opencv"), default="auto")
    q.set_defaults(func=cmd_evaluate)


def _detector(path: str | None, device: str = "cpu"):
    from perpixel.tasks.keypoints.module import KeypointTask
    from perpixel.tasks.keypoints.predict import KeypointDetector

    if path is None or path == "superpoint":
        from perpixel.tasks.keypoints.predict import shipped_superpoint

        return shipped_superpoint(device)
    return KeypointDetector(KeypointTask.load(path, device), device)


def cmd_match(args: argparse.Namespace) -> None:
    import torch

    from perpixel.tasks.keypoints.homographies import resize_homography
    from perpixel.tasks.keypoints.matching import estimate_homography, mutual_nearest_neighbours
    from perpixel.tasks.keypoints.predict import read_for_matching

    det = _detector(args.model)
    if not det.has_descriptors:
        raise PerpixelError(f"{args.model}: a detector without descriptors cannot match")
    (a, full_a), (b, full_b) = (
        read_for_matching(p, args.max_size) for p in (args.image_a, args.image_b)
    )
    pa, pb = det.predict(a), det.predict(b)
    m = mutual_nearest_neighbours(pa["descriptors"], pb["descriptors"], ratio=args.ratio)
    H, inliers, which = estimate_homography(
        pa["keypoints"][m[:, 0]], pb["keypoints"][m[:, 1]], args.ransac, args.threshold
    )
    from perpixel.tasks.keypoints.figures import draw_matches

    draw_matches(args.out, a, b, pa["keypoints"], pb["keypoints"], m, inliers, H)
    print(f"{len(pa['keypoints'])} / {len(pb['keypoints'])} points, {len(m)} mutual matches")
    if H is None:
        print(f"no homography: {len(m)} matches are too few (RANSAC {which})")
    else:
        # H is in the pixels of the images as shrunk to --max-size; print it in the files' own
        to_a, to_b = (
            resize_homography(full_a, a.shape[-2:]),
            resize_homography(full_b, b.shape[-2:]),
        )
        H_full = torch.linalg.inv(to_b) @ H.double() @ to_a
        H_full = H_full / H_full[2, 2]
        print(
            f"homography A -> B (pixels of the image files, RANSAC {which}, {args.threshold} px):"
        )
        for row in H_full.tolist():
            print("  " + " ".join(f"{v: .6g}" for v in row))
        print(f"inliers: {int(inliers.sum())} of {len(m)}")
    print(f"wrote {args.out}")


def cmd_adapt(args: argparse.Namespace) -> None:
    from perpixel.tasks.keypoints.adaptation import adapt_folder

    det = _detector(args.checkpoint, args.device)
    conf = det.task.config
    shape = tuple(args.shape or conf["data"]["shape"])
    if any(s <= 0 or s % 8 for s in shape):
        raise ConfigError(f"--shape must be positive multiples of 8, got {list(shape)}")
    if args.num < 1:
        raise ConfigError(f"--num must be >= 1 (the identity is the first), got {args.num}")
    written = adapt_folder(
        det.logits,
        args.images,
        args.out,
        shape,  # type: ignore[arg-type]
        det.detect_conf,
        num=args.num,
        seed=args.seed,
        device=args.device,
    )
    print(f"{len(written)} label files -> {args.out} (points at shape {list(shape)})")
    print(f"train on them with: data.kind=folder data.root={args.images} data.labels={args.out}")


def _short_names(folders: list[str]) -> list[str]:
    """The shortest path tails that tell the folders apart: bsds500/images/test and
    camvid/test -> "images/test", "camvid/test"."""
    parts = [Path(f).parts for f in folders]
    for k in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-k:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return list(folders)


def _pair_sets(args: argparse.Namespace) -> dict:
    from perpixel.data.images import list_images
    from perpixel.tasks.keypoints.evaluation import sequence_pairs, warped_pairs

    shape = tuple(args.shape)
    sets = {}
    for folder, name in zip(args.pairs, _short_names(args.pairs), strict=True):
        files = list_images(Path(folder))[: args.limit]
        sets[f"warped {name}"] = list(warped_pairs(files, shape))  # type: ignore[arg-type]
    if args.hpatches:
        pairs = list(sequence_pairs(args.hpatches, shape))  # type: ignore[arg-type]
        for kind in ("illumination", "viewpoint", "other"):
            part = [p for p in pairs if p.name.startswith(kind + "/")]
            if part:
                sets[f"{Path(args.hpatches).name} {kind}"] = part
    return sets


def cmd_evaluate(args: argparse.Namespace) -> None:
    from perpixel.tasks.keypoints.defaults import DEFAULTS
    from perpixel.tasks.keypoints.evaluation import Method, classic_methods, network_method
    from perpixel.tasks.keypoints.report import run_evaluation

    methods: list[Method] = []
    conf = DEFAULTS
    for path in args.checkpoints:
        det = _detector(path)
        conf = det.task.config
        name = (
            Path(path).stem
            if Path(path).stem not in ("best", "last")
            else Path(path).parent.parent.name
        )
        # a run's best and last (or two runs of one name) would share a row of the table
        used = {m.name for m in methods}
        if name in used:
            name = f"{name}_{Path(path).stem}"
        base, k = name, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        methods.append(network_method(name, det))
    missing: list[str] = []
    if not args.no_classic:
        found, missing = classic_methods(conf["detect"])
        methods += found
    shapes = None
    if args.shapes:
        shapes = {"data": conf["data"], "num": args.shapes, "seed": 0}
    results = run_evaluation(methods, args.out, shapes, _pair_sets(args), missing, args.ransac)
    print((Path(args.out) / "table.md").read_text())
    print(f"({results['seconds']:.0f} s on {results['hardware']}) -> {args.out}")


def evaluate_command(target, args: argparse.Namespace) -> None:
    """`perpixel evaluate CKPT DATA`: DATA "shapes" (detection mAP), an HPatches/Oxford root,
    or a folder of images (warped pairs); the same table as `perpixel keypoints evaluate`."""
    from perpixel.tasks.keypoints.evaluation import network_method
    from perpixel.tasks.keypoints.predict import KeypointDetector
    from perpixel.tasks.keypoints.report import run_evaluation

    det = KeypointDetector(target)
    conf = target.config
    out = Path(args.out) if args.out else Path(args.checkpoint).parent.parent / "eval"
    ns = argparse.Namespace(pairs=[], hpatches=None, shape=[240, 320], limit=None)
    shapes = None
    if args.data == "shapes":
        shapes = {"data": conf["data"], "num": None, "seed": 0}
    elif _is_sequences(Path(args.data)):
        ns.hpatches = args.data
    else:
        ns.pairs = [args.data]
    run_evaluation([network_method("model", det)], out, shapes, _pair_sets(ns), [])
    print((out / "table.md").read_text())
    print(f"results: {out}")


def _is_sequences(root: Path) -> bool:
    """Whether `root` holds HPatches (H_1_2) or Oxford (H1to2p) homography files."""
    patterns = ("H_1_2", "*/H_1_2", "H1to2p", "*/H1to2p")
    return root.is_dir() and any(any(root.glob(p)) for p in patterns)
