"""COCO instances and COCO panoptic readers on small files written here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from perpixel.data.formats import COCOInstances, COCOPanoptic, open_dataset, rle
from perpixel.data.panoptic import id_to_rgb
from perpixel.errors import DataError

from .conftest import write_rgb

H, W = 10, 12


def _instances(root):
    write_rgb(root / "val2017" / "000000000001.jpg", H, W, 0)
    write_rgb(root / "val2017" / "000000000002.jpg", H, W, 1)
    crowd = np.zeros((H, W), bool)
    crowd[6:10, 0:12] = True
    anns = [
        # a box polygon: rows 1..3, columns 1..4
        {"id": 1, "image_id": 1, "category_id": 18, "iscrowd": 0,
         "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]]},
        # compressed RLE overlapping the box at column 4, rows 2..3
        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": rle.encode(np.pad(np.ones((2, 4), bool), ((2, 6), (4, 4))))},
        # crowd, uncompressed RLE, under a non-crowd person at row 7, columns 0..1
        {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 1,
         "segmentation": {"size": [H, W], "counts": rle._runs(crowd).tolist()}},
        {"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": [[0, 7, 2, 7, 2, 8, 0, 8]]},
    ]  # fmt: skip
    data = {
        "images": [
            {"id": 1, "file_name": "000000000001.jpg", "height": H, "width": W},
            {"id": 2, "file_name": "000000000002.jpg", "height": H, "width": W},
        ],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
    }
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return data


def test_coco_instances(tmp_path):
    _instances(tmp_path)
    ds = open_dataset("coco", tmp_path, "val2017")
    assert isinstance(ds, COCOInstances) and len(ds) == 2
    assert ds.taxonomy.names == ["background", "person", "dog"]
    assert ds.taxonomy.things == ["person", "dog"] and ds.category_ids == [0, 1, 18]
    s = ds.load(0)
    dog = np.zeros((H, W), bool)
    dog[1:4, 1:5] = True
    assert (s.semantic[dog & (s.semantic != 255)] == 2).all()
    assert (s.semantic[2:4, 4] == 255).all() and (s.instances[2:4, 4] == 0).all()  # overlap
    assert s.semantic[1, 4] == 2 and s.semantic[2, 5] == 1
    assert s.instances[1, 1] == 1 and s.instances[2, 5] == 2  # annotation order
    assert s.semantic[9, 9] == 1 and s.instances[9, 9] == 0  # crowd
    assert s.semantic[7, 0] == 1 and s.instances[7, 0] == 3  # person over the crowd
    assert s.semantic[0, 0] == 0 and s.instances.max() == 3
    assert (ds.load(1).semantic == 0).all()
    assert len(COCOInstances(tmp_path, "val2017", skip_empty=True)) == 1


def test_coco_instances_bad_annotation_names_json(tmp_path):
    data = _instances(tmp_path)
    data["annotations"][1]["segmentation"] = {"size": [H, W + 1], "counts": "abc"}
    path = tmp_path / "annotations" / "instances_val2017.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="annotation 2: RLE size") as e:
        COCOInstances(tmp_path, "val2017").validate()
    assert e.value.path == path


def _panoptic(root, png_dir="panoptic_val2017"):
    ids = np.zeros((H, W), np.int64)
    ids[:5] = 5000  # sky (stuff)
    ids[5:, :6] = 300  # person, crowd
    ids[5:, 6:9] = 7  # person
    ids[5:, 9:] = 1234567  # car
    ids[0, 0] = 0  # unannotated
    write_rgb(root / "val2017" / "000000000009.jpg", H, W, 3)
    (root / png_dir).mkdir(parents=True)
    Image.fromarray(id_to_rgb(ids)).save(root / png_dir / "000000000009.png")
    data = {
        "images": [{"id": 9, "file_name": "000000000009.jpg", "height": H, "width": W}],
        "annotations": [{"image_id": 9, "file_name": "000000000009.png", "segments_info": [
            {"id": 5000, "category_id": 187, "iscrowd": 0},
            {"id": 300, "category_id": 1, "iscrowd": 1},
            {"id": 1234567, "category_id": 3, "iscrowd": 0},
            {"id": 7, "category_id": 1, "iscrowd": 0},
        ]}],
        "categories": [
            {"id": 1, "name": "person", "isthing": 1, "color": [220, 20, 60]},
            {"id": 3, "name": "car", "isthing": 1, "color": [0, 0, 142]},
            {"id": 187, "name": "sky-other-merged", "isthing": 0, "color": [70, 130, 180]},
        ],
    }  # fmt: skip
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps(data))
    return data


@pytest.mark.parametrize("png_dir", ["panoptic_val2017", "annotations/panoptic_val2017"])
def test_coco_panoptic(tmp_path, png_dir):
    _panoptic(tmp_path, png_dir)
    ds = open_dataset("coco_panoptic", tmp_path, "val2017")
    assert isinstance(ds, COCOPanoptic) and ds.names == ["000000000009"]
    tax = ds.taxonomy
    assert tax.names == ["person", "car", "sky-other-merged"] and tax.thing_ids == [0, 1]
    assert tax.colors[1] == (0, 0, 142) and ds.category_ids == [1, 3, 187]
    s = ds.load(0)
    assert s.semantic[0, 0] == 255 and s.semantic[0, 1] == 2 and s.instances[0, 1] == 0
    assert s.semantic[6, 0] == 0 and s.instances[6, 0] == 0  # crowd
    assert s.semantic[6, 7] == 0 and s.instances[6, 7] == 1  # segment 7 first
    assert s.semantic[6, 10] == 1 and s.instances[6, 10] == 2
    assert s.instances.max() == 2


def test_coco_panoptic_errors(tmp_path):
    data = _panoptic(tmp_path)
    path = tmp_path / "annotations" / "panoptic_val2017.json"
    del data["annotations"][0]["segments_info"][3]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"segment ids \[7\] are not in the segments_info") as e:
        COCOPanoptic(tmp_path, "val2017").validate()
    assert e.value.path == tmp_path / "panoptic_val2017" / "000000000009.png"
    data["annotations"][0]["file_name"] = "missing.png"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="missing.png, which does not exist") as e:
        COCOPanoptic(tmp_path, "val2017")
    assert e.value.path == path
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        COCOPanoptic(tmp_path, "val2017")
