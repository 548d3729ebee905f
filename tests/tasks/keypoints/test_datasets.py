"""The task's datasets: items agree with their points, pairs with their warp, label files
are read as plain data with one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from perpixel.errors import ConfigError, DataError
from perpixel.tasks.keypoints.datasets import build_dataset, collate, fit_image, read_points
from perpixel.tasks.keypoints.homographies import inside, warp_points
from perpixel.tasks.keypoints.labels import cells_to_points

from .conftest import kp_config


def data_conf(tmp_path, **over) -> dict:
    conf = kp_config(tmp_path)["data"]
    return {**conf, **over}


def test_shapes_items_label_their_points(tmp_path):
    ds = build_dataset(data_conf(tmp_path, pairs=False), "val")
    item = ds[3]
    assert item["image"].shape == (1, 48, 64) and item["labels"].shape == (6, 8)
    assert item["valid"].all()  # no warp on validation images
    # every labelled cell is a cell with a point, at one of its points' pixels
    pixels = {tuple(p) for p in item["points"].round().int().tolist()}
    labelled = cells_to_points(item["labels"][None])[0]
    assert {tuple(p) for p in labelled.int().tolist()} <= pixels
    cells = {(y // 8, x // 8) for x, y in pixels}
    assert len(labelled) == len(cells)


def test_validation_items_are_fixed_training_items_are_not(tmp_path):
    val = build_dataset(data_conf(tmp_path), "val")
    assert torch.equal(val[0]["image"], val[0]["image"])
    train = build_dataset(data_conf(tmp_path), "train", train=True)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        a = train[0]["image"]
        torch.manual_seed(2)
        b = train[0]["image"]
        torch.manual_seed(1)
        c = train[0]["image"]
    assert not torch.equal(a, b) and torch.equal(a, c)


def test_pairs_move_points_with_the_warp(tmp_path):
    ds = build_dataset(data_conf(tmp_path), "val")
    for i in range(4):
        it = ds[i]
        moved = warp_points(it["points"], it["homography"])
        expected = moved[inside(moved, (48, 64))]
        assert torch.allclose(it["warped_points"], expected, atol=1e-4)
        assert not it["warped_valid"].all() or it["warped_valid"].sum() > 0
    batch = collate([ds[0], ds[1]])
    assert batch["warped"].shape == (2, 1, 48, 64) and len(batch["warped_points"]) == 2


def test_shape_must_be_cells(tmp_path):
    with pytest.raises(ConfigError, match="multiples of 8"):
        build_dataset(data_conf(tmp_path, shape=[50, 64]), "val")


def test_fit_image_covers_then_crops():
    img = torch.rand(1, 30, 100)
    out = fit_image(img, (48, 64))
    assert out.shape == (1, 48, 64)


def write_folder(tmp_path, n=4):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(images / f"{i}.png")
        np.savez(
            labels / f"{i}.npz",
            points=rng.uniform(8, 40, (5, 2)).astype(np.float32),
            shape=np.array([48, 64]),
        )
    return images, labels


def test_labelled_folder_reads_points(tmp_path):
    images, labels = write_folder(tmp_path)
    conf = data_conf(
        tmp_path,
        kind="folder",
        root=str(images),
        labels=str(labels),
        pairs=False,
        val_fraction=0.25,
    )
    train, val = build_dataset(conf, "train", train=True), build_dataset(conf, "val")
    assert len(train) == 3 and len(val) == 1
    item = val[0]
    assert item["image"].shape == (1, 48, 64) and len(item["points"]) == 5


def test_label_files_fail_in_one_line(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, points=np.zeros((3, 2), np.float32), shape=np.array([96, 128]))
    with pytest.raises(DataError, match="x.npz.*shape \\[96, 128\\]"):
        read_points(bad, (48, 64))
    with pytest.raises(DataError, match="no label file"):
        read_points(tmp_path / "missing.npz", (48, 64))
    code = tmp_path / "code.npz"
    np.savez(code, points=np.array([{"a": 1}], dtype=object), shape=np.array([48, 64]))
    with pytest.raises(DataError, match="not a keypoint label file"):
        read_points(code, (48, 64))  # object arrays would need unpickling: refused
