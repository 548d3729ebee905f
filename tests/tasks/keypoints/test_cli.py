"""The task from the command line: train, predict, export, evaluate, adapt and match."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from perpixel.cli import main
from perpixel.tasks import open_checkpoint
from perpixel.tasks.keypoints.homographies import sample_homography, warp_images
from tests.conftest import BSDS_ROOT


def texture(h=96, w=128, seed=0) -> np.ndarray:
    """A gray (H, W) uint8 picture with corners: random rectangles on a gradient."""
    rng = np.random.default_rng(seed)
    img = np.tile(np.linspace(40, 90, w), (h, 1))
    for _ in range(25):
        x0, y0 = rng.integers(0, w - 10), rng.integers(0, h - 10)
        img[y0 : y0 + rng.integers(5, 30), x0 : x0 + rng.integers(5, 30)] = rng.integers(0, 255)
    return img.astype(np.uint8)


def save_gray(path, arr) -> None:
    Image.fromarray(np.stack([arr] * 3, -1)).save(path)


def test_checkpoint_opens_as_a_keypoint_task(tiny_superpoint):
    task, module = open_checkpoint(tiny_superpoint)
    assert task.name == "keypoints" and module.has_descriptors


def test_predict_writes_points_and_pictures(tiny_superpoint, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    save_gray(images / "a.png", texture(50, 70))  # not multiples of 8: padded, then cropped
    assert (
        main(["predict", tiny_superpoint, str(images), str(tmp_path / "out"), "--no-progress"]) == 0
    )
    with np.load(tmp_path / "out" / "a.npz", allow_pickle=False) as f:
        kp, desc = f["keypoints"], f["descriptors"]
    assert kp.shape[1] == 2 and desc.shape == (len(kp), 16)
    assert (kp[:, 0] < 70).all() and (kp[:, 1] < 50).all()
    assert Image.open(tmp_path / "out" / "a.png").size == (70, 50)


def test_export_checks_both_outputs(tiny_superpoint, tmp_path, capsys):
    assert main(["export", tiny_superpoint, str(tmp_path / "sp.onnx")]) == 0
    assert "ONNX Runtime matches" in capsys.readouterr().out
    import onnx

    names = [o.name for o in onnx.load(str(tmp_path / "sp.onnx")).graph.output]
    assert names == ["logits", "descriptors"]


def test_evaluate_writes_the_table(tiny_superpoint, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        save_gray(images / f"{i}.png", texture(seed=i))
    out = tmp_path / "eval"
    args = ["keypoints", "evaluate", tiny_superpoint, "--shapes", "10", "--pairs", str(images)]
    assert main([*args, "--shape", "96", "128", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    ap = res["shapes"]["clean"]
    assert set(ap) >= {"tiny_superpoint0", "harris", "shi_tomasi"}
    assert all(0 <= v <= 1 for v in ap.values())
    pairs = res["pairs"]["warped images"]
    model, harris = pairs["tiny_superpoint0"], pairs["harris"]
    assert model["pairs"] == 2 and "repeatability" in model and "homography@3" in model
    assert 0 < harris["repeatability"] <= 1 and "homography@3" not in harris  # no descriptors
    table = (out / "table.md").read_text()
    assert "mAP (no noise)" in table and "H@3" in table
    assert list((out / "warped images" / "pictures").glob("*.png"))


def test_adapt_then_train_on_the_folder(tiny_superpoint, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        save_gray(images / f"{i}.png", texture(seed=i))
    labels = tmp_path / "labels"
    args = [tiny_superpoint, str(images), "--out", str(labels), "--num", "3"]
    assert main(["keypoints", "adapt", *args, "--shape", "48", "64"]) == 0
    assert len(list(labels.glob("*.npz"))) == 4
    from perpixel.tasks.keypoints.train import train

    from .conftest import kp_config

    data = {"kind": "folder", "root": str(images), "labels": str(labels), "val_fraction": 0.25}
    conf = kp_config(tmp_path / "run", data=data, init_from=tiny_superpoint)
    result = train(conf)
    assert result["best"] and result["monitor"] == "val/ap"


def shared_image() -> np.ndarray:
    files = sorted((BSDS_ROOT / "images" / "test").glob("*.jpg"))
    if not files:
        pytest.skip(f"BSDS500 not found at {BSDS_ROOT}")
    return np.array(Image.open(files[0]).convert("L"))


def test_match_end_to_end(tiny_superpoint, tmp_path, capsys):
    """Two warped copies of a shared image: the command draws the picture and prints the
    homography and the inlier count."""
    gray = shared_image()[:240, :320]
    a = torch.from_numpy(gray).float()[None, None] / 255
    H = sample_homography((240, 320), {"allow_artifacts": False}, torch.Generator().manual_seed(3))
    b = warp_images(a, H[None], (240, 320))
    save_gray(tmp_path / "a.png", gray)
    save_gray(tmp_path / "b.png", (b[0, 0].numpy() * 255).round().astype(np.uint8))
    out = tmp_path / "m.png"
    args = ["keypoints", "match", str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert main([*args, "--model", tiny_superpoint, "--out", str(out), "--ransac", "kornia"]) == 0
    text = capsys.readouterr().out
    assert "mutual matches" in text and out.is_file()
    assert Image.open(out).size == (640, 240)  # A and B side by side
    assert "RANSAC kornia" in text
    assert "inliers:" in text or "no homography" in text


def test_match_refuses_a_detector_without_descriptors(tmp_path, capsys):
    from perpixel.tasks.keypoints.train import train

    from .conftest import kp_config

    conf = kp_config(
        tmp_path / "mp",
        model={"name": "magicpoint", "channels": [8, 8, 16, 16], "head_channels": 16},
    )
    conf["data"]["pairs"] = False
    ckpt = train(conf)["best"]
    save_gray(tmp_path / "a.png", texture())
    args = ["keypoints", "match", str(tmp_path / "a.png"), str(tmp_path / "a.png")]
    assert main([*args, "--model", ckpt]) == 2
    assert "without descriptors" in capsys.readouterr().err


def test_pair_sets_of_same_named_folders_keep_apart():
    from perpixel.tasks.keypoints.cli import _short_names

    names = _short_names(["data/bsds500/images/test", "data/camvid/test"])
    assert names == ["images/test", "camvid/test"]
    assert _short_names(["a/x", "b/y"]) == ["x", "y"]
