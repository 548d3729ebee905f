"""The panoptic task end to end: a tiny recipe trains, `perpixel evaluate` scores it (PQ, IoU,
iIoU, AP), `perpixel predict` writes the pictures and the Cityscapes / COCO panoptic files,
`perpixel export` writes ONNX; bad inputs stop in one line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import perpixel
from perpixel.cli import main
from perpixel.data.panoptic import rgb_to_id
from perpixel.data.synthetic import SYNTHETIC, generate
from perpixel.models.panoptic import PanopticOutput
from perpixel.tasks import load_recipe
from perpixel.tasks.panoptic.datasets import build_dataset, collate
from perpixel.tasks.panoptic.evaluation import PanopticEvaluator

TINY_MODEL = {
    "name": "panoptic_deeplab", "backbone": "resnet18", "backbone_widths": [4, 4, 6, 8],
    "aspp_rates": [2, 4, 6], "aspp_channels": 8, "semantic_channels": 8,
    "semantic_project": [4, 4], "semantic_head_channels": 8, "instance_channels": 8,
    "instance_project": [4, 4], "instance_head_channels": 4, "sigma": 3.0, "stuff_area": 0,
}  # fmt: skip


def tiny_recipe(out) -> dict:
    return load_recipe(
        None,
        {
            "task": "panoptic",
            "out": str(out),
            "data": {
                "synthetic": {
                    "num_train": 8,
                    "num_val": 4,
                    "num_test": 4,
                    "height": 48,
                    "width": 48,
                },
                "batch_size": 4,
                "val_batch_size": 4,
                "num_workers": 0,
            },
            "model": TINY_MODEL,
            "trainer": {"max_epochs": 1, "enable_progress_bar": False, "precision": "32-true"},
        },
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("panoptic_run")
    conf = tiny_recipe(out)
    r = perpixel.tasks.get_task("panoptic").train(conf)
    return {**r, "out": out}


def test_synthetic_dataset_has_instances_and_collate_pads_them():
    data = tiny_recipe("unused")["data"]
    ds = build_dataset(data, "val")
    s = ds[0]
    g = generate(1, 0, height=48, width=48)  # the val split's seed
    assert np.array_equal(s["instances"].numpy(), g.instances)
    assert np.array_equal(s["mask"].numpy(), g.semantic)
    small = {
        **s,
        "image": s["image"][:, :40],
        "mask": s["mask"][:40],
        "instances": s["instances"][:40],
    }
    batch = collate([s, small], ignore_index=255)
    assert batch["size"] == [(48, 48), (40, 48)]
    assert (batch["mask"][1, 40:] == 255).all() and (batch["instances"][1, 40:] == 0).all()


def test_evaluator_scores_the_ground_truth_perfectly():
    ev = PanopticEvaluator(SYNTHETIC)
    for i in range(3):
        g = generate(5, i, height=64, width=64)
        sem, ins = (
            torch.from_numpy(g.semantic.astype(np.int64)),
            torch.from_numpy(g.instances.astype(np.int64)),
        )
        ids = [k for k in np.unique(g.instances) if k > 0]
        masks = torch.stack([ins == k for k in ids])
        classes = torch.tensor([int(g.semantic[g.instances == k][0]) for k in ids])
        ev.update(PanopticOutput(sem, ins, masks, classes, torch.ones(len(ids))), sem, ins)
    m = ev.compute()
    assert m["pq"] == pytest.approx(1.0) and m["miou"] == pytest.approx(1.0)
    assert m["miiou"] == pytest.approx(1.0) and m["ap"] == pytest.approx(1.0)
    assert m["category_miou"] == pytest.approx(1.0)
    json.dumps(m)  # JSON-ready


def test_evaluator_counts_a_missed_instance_in_pq_iiou_and_ap():
    g = generate(5, 0, height=64, width=64)
    sem, ins = (
        torch.from_numpy(g.semantic.astype(np.int64)),
        torch.from_numpy(g.instances.astype(np.int64)),
    )
    ids = [k for k in np.unique(g.instances) if k > 0]
    small = min(ids, key=lambda k: int((ins == k).sum()))
    psem, pins = sem.clone(), ins.clone()
    psem[ins == small] = 0  # the smallest thing predicted as sky
    pins[ins == small] = 0
    keep = [k for k in ids if k != small]
    masks = torch.stack([ins == k for k in keep])
    classes = torch.tensor([int(g.semantic[g.instances == k][0]) for k in keep])
    ev = PanopticEvaluator(SYNTHETIC)
    ev.update(PanopticOutput(psem, pins, masks, classes, torch.ones(len(keep))), sem, ins)
    m = ev.compute()
    assert m["pq_things"] < 1.0 and m["pq_stuff"] < 1.0  # sky got a false-positive region
    assert m["miiou"] < m["miou"] < 1.0  # the small miss weighs more in iIoU
    assert m["ap"] < 1.0


def test_training_writes_checkpoint_report_and_scores(tiny_run):
    assert tiny_run["monitor"] == "val/pq" and tiny_run["best_score"] is not None
    assert (tiny_run["out"] / "panoptic.png").is_file()
    task, module = perpixel.tasks.open_checkpoint(tiny_run["best"])
    assert task.name == "panoptic" and module.taxonomy.names == SYNTHETIC.names


def test_evaluate_command_reports_pq_iiou_and_ap(tiny_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        main(["evaluate", tiny_run["best"], "synthetic", "--out", str(out), "--overlays", "2"]) == 0
    )
    text = capsys.readouterr().out
    for label in ("PQ", "mIoU", "iIoU", "mask AP", "category IoU"):
        assert label in text
    m = json.loads((out / "metrics.json").read_text())
    for key in (
        "pq",
        "pq_things",
        "pq_stuff",
        "miou",
        "miiou",
        "ap",
        "per_class_pq",
        "per_class_ap",
    ):
        assert key in m
    assert (out / "report.html").is_file() and (out / "panoptic.png").is_file()


def test_predict_writes_pictures_and_cityscapes_and_coco_panoptic_files(tiny_run, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray(generate(9, i, height=48, width=56).image).save(images / f"im{i}.png")
    out = tmp_path / "pred"
    assert main(["predict", tiny_run["best"], str(images), str(out), "--no-progress"]) == 0
    doc = json.loads((out / "panoptic.json").read_text())
    assert {a["file_name"] for a in doc["annotations"]} == {"im0.png", "im1.png"}
    assert [c["name"] for c in doc["categories"]] == SYNTHETIC.names
    for a in doc["annotations"]:
        stem = a["file_name"][:-4]
        ids = rgb_to_id(np.asarray(Image.open(out / "panoptic" / a["file_name"])))
        assert ids.shape == (48, 56)
        assert set(np.unique(ids)) - {0} == {s["id"] for s in a["segments_info"]}
        for s in a["segments_info"]:
            assert s["area"] == int((ids == s["id"]).sum())
        labels = np.asarray(Image.open(out / f"{stem}_labelIds.png"))
        inst = np.asarray(Image.open(out / f"{stem}_instanceIds.png")).astype(np.int64)
        assert labels.shape == inst.shape == (48, 56)
        has = inst >= 1000
        assert np.array_equal(inst[has] // 1000, labels[has])
        assert np.array_equal(inst[~has], labels[~has])
        assert Image.open(out / f"{stem}_panoptic.png").mode == "RGB"


def test_export_writes_the_dense_maps(tiny_run, tmp_path, capsys):
    assert main(["export", tiny_run["best"], str(tmp_path / "m.onnx")]) == 0
    import onnx

    names = [o.name for o in onnx.load(str(tmp_path / "m.onnx")).graph.output]
    assert names == ["center", "offset", "semantic"]


def test_python_api_predicts_one_image(tiny_run):
    p = perpixel.load(tiny_run["best"]).predict(generate(9, 0, height=40, width=44).image)
    assert p.semantic.shape == p.instances.shape == (40, 44)
    assert p.masks.shape[1:] == (40, 44) and len(p.classes) == len(p.scores) == len(p.masks)


def test_instance_ids_that_do_not_match_the_class_map_stop_evaluate(tiny_run, tmp_path, capsys):
    root = tmp_path / "folder"
    for d in ("images", "masks", "instances"):
        (root / d).mkdir(parents=True)
    (root / "classes.txt").write_text(
        "".join(f"{n}{' thing' if n in SYNTHETIC.things else ''}\n" for n in SYNTHETIC.names)
    )
    g = generate(2, 0, height=32, width=32)
    Image.fromarray(g.image).save(root / "images" / "a.png")
    Image.fromarray(g.semantic).save(root / "masks" / "a.png")
    bad = g.instances.astype(np.uint8)
    bad[g.semantic < 4] = 1  # an instance id on stuff pixels
    Image.fromarray(bad).save(root / "instances" / "a.png")
    out = tmp_path / "eval_bad"
    assert main(["evaluate", tiny_run["best"], str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a.png" in err[0]
    assert not out.exists()
