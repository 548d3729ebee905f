"""A user's own folder: portrait and landscape photos in one batch, a folder without splits
(seeded split), evaluate records what it read, and the run ends with a report."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from perpixel import cli
from perpixel.errors import ConfigError, DataError
from perpixel.metrics.confusion import SegmentationMetrics
from perpixel.tasks.segmentation.datasets import build_dataset, collate


def photo_folder(root, n=10, mixed=True):
    """root/images + root/masks + classes.txt: portrait (40x28) and landscape (28x40) photos
    (all landscape unless `mixed`), masks with a void top row."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("sky\nroad\ncar\n")
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = (40, 28) if i % 2 and mixed else (28, 40)
        mask = np.zeros((h, w), np.uint8)
        mask[h // 2 :] = 1
        mask[h // 3 : h // 2, w // 3 :] = 2
        mask[0] = 255
        image = (np.stack([mask * 80] * 3, -1) + rng.integers(0, 40, (h, w, 3))).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"p{i}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"p{i}.png")
    return root


DATA = {"kind": "folder", "ignore_index": 255, "augment": {}, "split": None}


def test_collate_pads_mixed_sizes_with_the_ignore_value():
    a = {"image": torch.ones(3, 4, 6), "mask": torch.zeros(4, 6, dtype=torch.long), "name": "a"}
    b = {"image": torch.ones(3, 6, 4), "mask": torch.ones(6, 4, dtype=torch.long), "name": "b"}
    batch = collate([a, b], ignore_index=11)
    assert batch["image"].shape == (2, 3, 6, 6) and batch["mask"].shape == (2, 6, 6)
    assert (batch["mask"][0, 4:] == 11).all() and (batch["mask"][1, :, 4:] == 11).all()
    assert (batch["image"][0, :, 4:] == 0).all() and (batch["mask"][0, :4] == 0).all()
    # padding never counts: metrics of the padded batch = metrics of the two images alone
    m = SegmentationMetrics(12, 11)
    m.update(torch.zeros(2, 6, 6, dtype=torch.long), batch["mask"])
    assert m.compute()["pixel_accuracy"] == pytest.approx(24 / 48)


def test_mixed_sizes_in_split_folders(tmp_path, tiny_yaml):
    """train/ and val/ of portrait and landscape photos: training and validation batch them."""
    root = tmp_path / "photos"
    for split in ("train", "val"):
        photo_folder(root / split, n=6)
    (root / "classes.txt").write_text("sky\nroad\ncar\n")
    args = ["train", str(tiny_yaml), "--out", str(tmp_path / "run"), "-o", "data.kind=folder"]
    args += ["-o", f"data.root={root}", "-o", "data.batch_size=3", "-o", "data.val_batch_size=3"]
    assert cli.main([*args, "-o", "trainer.max_epochs=1"]) == 0
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


def test_training_on_portrait_and_landscape_photos(tmp_path, tiny_yaml):
    root = photo_folder(tmp_path / "photos")
    out = tmp_path / "run"
    args = ["train", str(tiny_yaml), "--out", str(out), "-o", "data.kind=folder"]
    args += ["-o", f"data.root={root}", "-o", "data.split={val: 0.2, test: 0.2, seed: 1}"]
    args += ["-o", "data.batch_size=4", "-o", "data.val_batch_size=2", "-o", "trainer.max_epochs=1"]
    assert cli.main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["epoch"] == 1 and 0 <= summary["best"]["val/miou"] <= 1
    info = summary["info"]
    assert info["recipe"].startswith(str(tiny_yaml)) and "data.root=" in info["recipe"]
    assert info["perpixel"] and info["date"][:2] == "20" and "threads" in info["hardware"]
    html = (out / "report.html").read_text()
    assert "overlays.png" in html and "training_curves.png" in html and "val/miou" in html
    assert (out / "overlays.png").stat().st_size > 1000

    # evaluate the folder it was trained on: its seeded test part, recorded as such
    assert cli.main(["evaluate", str(out / "checkpoints" / "best.ckpt"), str(root)]) == 0
    metrics = json.loads((out / "eval_test" / "metrics.json").read_text())
    assert metrics["info"]["split"].startswith("test part of the seeded split")
    assert metrics["info"]["images"] == 2


def test_evaluate_a_flat_folder_records_all_images(tiny_run, tmp_path, capsys):
    root = photo_folder(tmp_path / "photos", n=3, mixed=False)
    ckpt = tiny_run["best"]
    # the tiny checkpoint has 8 classes; the folder 3: give it matching names
    names = json.loads(json.dumps(torch.load(ckpt, weights_only=True)["hyper_parameters"]))
    (root / "classes.txt").write_text("\n".join(names["taxonomy"]["names"]) + "\n")
    out = tmp_path / "eval"
    assert cli.main(["evaluate", ckpt, str(root), "--out", str(out)]) == 0
    info = json.loads((out / "metrics.json").read_text())["info"]
    assert info["split"] == "all images; the folder has no splits" and info["images"] == 3
    title = (out / "report.html").read_text().split("<h1>")[1].split("</h1>")[0]
    assert title.endswith("(all images; the folder has no splits)")
    capsys.readouterr()
    assert cli.main(["evaluate", ckpt, str(root), "--split", "val"]) == 2
    assert "leave out --split" in capsys.readouterr().err


def test_seeded_split_is_stable_and_disjoint():
    from perpixel.data.splits import seeded_split

    parts = seeded_split(20, {"val": 0.15, "test": 0.25, "seed": 0})
    assert [len(parts[k]) for k in ("train", "val", "test")] == [12, 3, 5]
    assert sorted(sum(parts.values(), [])) == list(range(20))
    assert parts == seeded_split(20, {"val": 0.15, "test": 0.25, "seed": 0})
    assert parts != seeded_split(20, {"val": 0.15, "test": 0.25, "seed": 1})
    with pytest.raises(ConfigError, match="summing below 1"):
        seeded_split(20, {"val": 0.5, "test": 0.5})
    with pytest.raises(ConfigError, match="keys"):
        seeded_split(20, {"validation": 0.2})


def test_flat_folder_without_split_says_how_to_split(tmp_path):
    root = photo_folder(tmp_path / "photos", n=4)
    with pytest.raises(DataError, match=r"no train/ subfolder; set data.split"):
        build_dataset({**DATA, "root": str(root)}, "train")
    data = {**DATA, "root": str(root), "split": {"val": 0.25, "test": 0.25, "seed": 0}}
    names = {r: [p[0].name for p in build_dataset(data, r).pairs] for r in ("train", "val", "test")}
    assert sorted(sum(names.values(), [])) == [f"p{i}.jpg" for i in range(4)]
    assert all(len(v) >= 1 for v in names.values())
