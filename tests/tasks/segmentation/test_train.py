"""End-to-end: training, checkpoints, resume, evaluation, prediction."""

import json

import numpy as np
import pytest
import torch

import perpixel
from perpixel.errors import PerpixelError
from perpixel.tasks.segmentation.train import evaluate, train


def test_unet_beats_linear_baseline(tiny_run, tiny_config, tmp_path):
    """The recipe's promise on a small synthetic set: context beats colour."""
    conf = tiny_run["conf"]
    unet = evaluate(tiny_run["best"], conf["data"], split="val")
    lin_conf = tiny_config(tmp_path / "lin", model={"name": "linear"}, optim={"lr": 0.05})
    lin = evaluate(train(lin_conf)["best"], conf["data"], split="val")
    assert unet["miou"] > lin["miou"] + 0.05, (unet["miou"], lin["miou"])
    assert unet["pixel_accuracy"] > lin["pixel_accuracy"]


def test_checkpoints_and_logs(tiny_run):
    out = tiny_run["out"]
    assert (out / "checkpoints" / "best.ckpt").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "config.yaml").is_file()
    csv = (out / "logs" / "metrics.csv").read_text()
    assert "val/miou" in csv and "train/loss" in csv
    assert list((out / "logs").glob("events.out.tfevents*")), "TensorBoard log missing"
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    assert tiny_run["best_val_miou"] is not None


def test_evaluate_matches_validation_log(tiny_run):
    """Evaluation and training use the same metric: the best epoch's logged val mIoU."""
    m = evaluate(tiny_run["best"], tiny_run["conf"]["data"], split="val")
    assert m["miou"] == pytest.approx(tiny_run["best_val_miou"], abs=1e-6)
    cm = np.asarray(m["confusion_matrix"])
    assert cm.sum() == m["num_pixels"] == 32 * 64 * 64


def test_refuses_to_overwrite_then_resumes(tiny_run, tiny_config, tmp_path):
    conf = tiny_config(tmp_path / "r", trainer={**tiny_run["conf"]["trainer"], "max_epochs": 1})
    train(conf)
    with pytest.raises(PerpixelError, match="--resume"):
        train(conf)
    more = {**conf, "trainer": {**conf["trainer"], "max_epochs": 2}}
    r = train(more, resume=True)
    ckpt = torch.load(r["last"], map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1  # the second epoch (0-based) ran after resuming
    with pytest.raises(PerpixelError, match="nothing to resume"):
        train(tiny_config(tmp_path / "empty"), resume=True)


def test_load_predict(tiny_run):
    seg = perpixel.load(tiny_run["best"])
    image = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    pred = seg.predict(image)
    assert pred.labels.shape == (37, 53)
    assert pred.probs.shape == (seg.taxonomy.num_classes, 37, 53)
    np.testing.assert_allclose(pred.probs.sum(0), 1.0, atol=1e-5)
    assert (pred.labels == pred.probs.argmax(0)).all()


def test_load_errors(tmp_path):
    with pytest.raises(PerpixelError, match="not found"):
        perpixel.load(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PerpixelError, match="not a perpixel checkpoint"):
        perpixel.load(bad)


def test_metrics_json_serialisable(tiny_run):
    m = evaluate(tiny_run["best"], tiny_run["conf"]["data"], split="test")
    json.dumps(m)
    assert 0 <= m["miou"] <= 1


def test_class_weights_from_training_masks(tiny_config, tmp_path):
    """`loss.class_weights: median_frequency` is computed from the un-augmented training masks
    and stored in the checkpoint with the loss."""
    from perpixel.tasks.segmentation.datasets import build_dataset
    from perpixel.tasks.segmentation.losses import class_pixel_counts, class_weights

    conf = tiny_config(
        tmp_path / "w",
        loss={"ce": 1.0, "dice": 0.0, "class_weights": "median_frequency"},
        data={
            **tiny_config(tmp_path)["data"],
            "augment": {"hflip": True, "scale": [0.75, 1.25], "crop": [48, 48]},
        },
        trainer={**tiny_config(tmp_path)["trainer"], "max_epochs": 1},
    )
    r = train(conf)
    plain = build_dataset(conf["data"], "train")  # no augmentation
    masks = [plain[i]["mask"].numpy() for i in range(len(plain))]
    expected = class_weights(*class_pixel_counts(masks, 8, 255), "median_frequency")
    saved = perpixel.load(r["best"]).task.loss.class_weights.numpy()
    np.testing.assert_allclose(saved, expected, rtol=1e-6)
    assert saved.min() > 0 and not np.allclose(saved, saved[0])


def test_best_is_last_when_no_validation_ran(tiny_config, tmp_path):
    conf = tiny_config(tmp_path / "nv")
    conf["trainer"].update(max_epochs=1, check_val_every_n_epoch=2)
    r = train(conf)
    assert r["best_val_miou"] is None
    assert r["best"] == r["last"] and perpixel.load(r["best"]).model is not None
