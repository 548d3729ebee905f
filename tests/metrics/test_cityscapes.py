"""perpixel.metrics.cityscapes: the reference's rules on hand-made files (the parity with
cityscapesScripts itself is benchmarks/cityscapes_parity.py), pairing and bad files; the
`perpixel panoptic cityscapes` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from perpixel.cli import main
from perpixel.errors import DataError
from perpixel.metrics.cityscapes import evaluate_files, find_pairs

ROAD, CAR, CARAVAN, UNLABELED = 7, 26, 29, 0
W_CAR = 12794.0202738185 / 10  # avgClassSize["car"] / the instance's 10 pixels


def write(tmp_path, name="aachen_000000_000019", pred=None):
    """Ground truth: 10 road pixels, one car instance of 10 (id 26000); the prediction:
    road 8 + caravan 2; car 6 + caravan 2 + unlabeled 2."""
    gt = np.array([[ROAD] * 10, [CAR] * 10], np.uint8)
    inst = np.array([[ROAD] * 10, [26000] * 10], np.uint16)
    if pred is None:
        pred = np.array([[ROAD] * 8 + [CARAVAN] * 2, [CAR] * 6 + [CARAVAN] * 2 + [0] * 2])
    (tmp_path / "gt" / "aachen").mkdir(parents=True, exist_ok=True)
    (tmp_path / "pred").mkdir(exist_ok=True)
    Image.fromarray(gt).save(tmp_path / "gt" / "aachen" / f"{name}_gtFine_labelIds.png")
    Image.fromarray(inst).save(tmp_path / "gt" / "aachen" / f"{name}_gtFine_instanceIds.png")
    Image.fromarray(np.asarray(pred, np.uint8)).save(tmp_path / "pred" / f"{name}_pred.png")


def test_ids_not_evaluated_are_misses_and_caravan_counts_as_vehicle_in_category_iiou(tmp_path):
    write(tmp_path)
    s = evaluate_files(find_pairs(tmp_path / "pred", tmp_path / "gt"))
    assert s["per_class_iou"]["road"] == pytest.approx(0.8)  # caravan: a miss, no FP anywhere
    assert s["per_class_iou"]["car"] == pytest.approx(0.6)  # caravan and unlabeled: misses
    assert s["per_class_iiou"]["car"] == pytest.approx(0.6)
    assert s["per_category_iou"]["vehicle"] == pytest.approx(0.6)
    assert s["per_category_iou"]["flat"] == pytest.approx(0.8)
    # category iIoU: caravan on the car is a vehicle hit (8 of 10, weighted), caravan on the
    # road a vehicle false positive (2, unweighted), as cityscapesScripts counts them
    assert s["per_category_iiou"]["vehicle"] == pytest.approx(8 * W_CAR / (10 * W_CAR + 2))
    assert s["per_class_iou"]["sky"] is None and s["per_category_iiou"]["human"] is None


@pytest.mark.parametrize("workers", [1, 2])
def test_images_sum_over_processes(tmp_path, workers):
    write(tmp_path, "aachen_000000_000019")
    write(tmp_path, "aachen_000001_000019", np.array([[ROAD] * 10, [CAR] * 10]))
    s = evaluate_files(find_pairs(tmp_path / "pred", tmp_path / "gt"), workers)
    assert s["per_class_iou"]["car"] == pytest.approx(16 / 20)
    assert s["per_class_iiou"]["car"] == pytest.approx(16 / 20)  # same size: same weights


def test_pairing_and_bad_files_name_the_file(tmp_path):
    write(tmp_path)
    (tmp_path / "pred" / "aachen_000000_000019_copy.png").write_bytes(
        (tmp_path / "pred" / "aachen_000000_000019_pred.png").read_bytes()
    )
    with pytest.raises(DataError, match="2 predictions for aachen_000000_000019_gtFine"):
        find_pairs(tmp_path / "pred", tmp_path / "gt")
    for f in (tmp_path / "pred").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no prediction for aachen_000000_000019_gtFine"):
        find_pairs(tmp_path / "pred", tmp_path / "gt")
    with pytest.raises(DataError, match="no \\*_gtFine_labelIds.png"):
        find_pairs(tmp_path / "pred", tmp_path / "pred")
    write(tmp_path, pred=np.full((2, 10), 40))
    with pytest.raises(
        DataError, match="aachen_000000_000019_pred.png: holds uint8 values up to 40"
    ):
        evaluate_files(find_pairs(tmp_path / "pred", tmp_path / "gt"))
    write(tmp_path, pred=np.full((3, 10), ROAD))
    with pytest.raises(DataError, match="_pred.png: label map is \\(3, 10\\)"):
        evaluate_files(find_pairs(tmp_path / "pred", tmp_path / "gt"))


def test_command_prints_and_writes_scores(tmp_path, capsys):
    write(tmp_path)
    out = tmp_path / "scores.json"
    assert main(["panoptic", "cityscapes", str(tmp_path / "pred"), str(tmp_path / "gt"),
                 "--workers", "1", "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "car              0.600  0.600" in printed
    assert json.loads(out.read_text())["per_class_iou"]["road"] == pytest.approx(0.8)
    bad = tmp_path / "nope.json"
    assert main(["panoptic", "cityscapes", str(tmp_path / "none"), str(tmp_path / "gt"),
                 "--out", str(bad)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none: prediction folder not found" in err[0]
    assert not bad.exists()
