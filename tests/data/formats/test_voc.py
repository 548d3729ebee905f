"""Pascal VOC 2012 and SBD readers (and train_aug) on small files written here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.sparse
from PIL import Image

from perpixel.data.formats import SBD, VOC, open_dataset
from perpixel.data.formats.voc import PASCAL_VOC, voc_colormap
from perpixel.errors import DataError

from .conftest import write_label, write_rgb

CAT, DOG, PERSON = 8, 12, 15


def _maps(h=6, w=8):
    """(class map, object map) with a void border around object 2 (a dog)."""
    cls = np.zeros((h, w), np.uint8)
    obj = np.zeros((h, w), np.uint8)
    cls[1:3, 1:3], obj[1:3, 1:3] = CAT, 1
    cls[3:5, 4:7], obj[3:5, 4:7] = DOG, 2
    cls[5, 4:7], obj[5, 4:7] = 255, 255
    cls[0, 5:7], obj[0, 5:7] = PERSON, 3
    return cls, obj


def _voc(root, names=("2007_000001", "2007_000002", "2007_000003"), val=("2007_000003",)):
    cls, obj = _maps()
    for k, n in enumerate(names):
        img = write_rgb(root / "JPEGImages" / f"{n}.png", 6, 8, k)
        (root / "JPEGImages" / f"{n}.png").rename(root / "JPEGImages" / f"{n}.jpg")  # lossless
        write_label(root / "SegmentationClass" / f"{n}.png", cls, palette=True)
        write_label(root / "SegmentationObject" / f"{n}.png", obj, palette=True)
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    train = [n for n in names if n not in val]
    (sets / "train.txt").write_text("\n".join(train) + "\n")
    (sets / "val.txt").write_text("\n".join(val) + "\n")
    return img


def _write_sbd_mat(path, cls, obj):
    """GTcls / GTinst as SBD stores them: 1x1 structs, Boundaries a cell of sparse maps."""
    path.parent.parent.joinpath("cls").mkdir(parents=True, exist_ok=True)
    path.parent.parent.joinpath("inst").mkdir(parents=True, exist_ok=True)
    bounds = np.empty((20, 1), object)
    for k in range(20):
        bounds[k, 0] = scipy.sparse.csc_matrix(np.zeros(cls.shape, bool))
    present = np.unique(cls[(cls > 0) & (cls < 255)]).astype(np.uint8).reshape(-1, 1)
    scipy.io.savemat(
        path.parent.parent / "cls" / path.name,
        {"GTcls": {"Boundaries": bounds, "Segmentation": cls, "CategoriesPresent": present}},
    )
    ids = np.unique(obj[obj > 0])
    cats = np.array([cls[obj == i][0] for i in ids], np.uint8).reshape(-1, 1)
    inst_bounds = np.empty((len(ids), 1), object)
    for k in range(len(ids)):
        inst_bounds[k, 0] = scipy.sparse.csc_matrix(np.zeros(cls.shape, bool))
    scipy.io.savemat(
        path.parent.parent / "inst" / path.name,
        {"GTinst": {"Segmentation": obj, "Boundaries": inst_bounds, "Categories": cats}},
    )


def _sbd(root, names=("2008_000100", "2007_000001", "2007_000003")):
    cls, obj = _maps()
    cls[5, 4:7], obj[5, 4:7] = 0, 0  # SBD has no void border
    cls[0, 0], obj[0, 0] = DOG, 4  # SBD's annotation differs from VOC's: one more dog
    ds = root / "dataset"
    for k, n in enumerate(names):
        write_rgb(ds / "img" / f"{n}.png", 6, 8, 10 + k)
        (ds / "img" / f"{n}.png").rename(ds / "img" / f"{n}.jpg")
        _write_sbd_mat(ds / "cls" / f"{n}.mat", cls, obj)
    (ds / "train.txt").write_text(f"{names[0]}\n{names[1]}\n")
    (ds / "val.txt").write_text(f"{names[2]}\n")


def test_voc_colormap_is_the_voc_palette():
    cmap = voc_colormap(256)
    assert cmap[0] == (0, 0, 0) and cmap[1] == (128, 0, 0) and cmap[15] == (192, 128, 128)
    assert len(set(cmap)) == 256 and PASCAL_VOC.thing_ids == list(range(1, 21))


def test_voc_reads_palette_maps(tmp_path):
    img = _voc(tmp_path / "VOC2012")
    ds = open_dataset("voc", tmp_path, "val")  # the VOCdevkit folder also works
    assert isinstance(ds, VOC) and ds.names == ["2007_000003"]
    with Image.open(tmp_path / "VOC2012/SegmentationClass/2007_000003.png") as im:
        assert im.mode == "P"
    s = ds.load(0)
    np.testing.assert_array_equal(s.image, img)
    cls, obj = _maps()
    np.testing.assert_array_equal(s.semantic, cls)
    np.testing.assert_array_equal(s.instances, obj * (obj < 255))
    assert s.instances.dtype == np.int32 and s.semantic.dtype == np.uint8


def test_voc_object_spanning_two_classes_names_object_file(tmp_path):
    _voc(tmp_path)
    cls, obj = _maps()
    obj[1, 1] = 2  # the dog's object id on a cat pixel
    bad = tmp_path / "SegmentationObject" / "2007_000002.png"
    write_label(bad, obj, palette=True)
    with pytest.raises(DataError, match="spans classes") as e:
        VOC(tmp_path, "train").validate()
    assert e.value.path == bad
    obj[1, 1] = 1
    obj[0, 0] = 1  # an object on background
    write_label(bad, obj, palette=True)
    with pytest.raises(DataError, match="background or void"):
        VOC(tmp_path, "train").load(1)


def test_sbd_mat_struct_access(tmp_path):
    _sbd(tmp_path)
    ds = open_dataset("sbd", tmp_path, "train")
    assert isinstance(ds, SBD) and ds.names == ["2008_000100", "2007_000001"]
    s = ds.load(0)
    assert s.semantic[0, 0] == DOG and s.semantic[5, 5] == 0 and s.semantic[1, 1] == CAT
    assert sorted(np.unique(s.instances).tolist()) == [0, 1, 2, 3, 4]
    assert s.instances[0, 0] == 4 and s.instances[3, 4] == 2
    raw = scipy.io.loadmat(tmp_path / "dataset/inst/2008_000100.mat")
    assert raw["GTinst"].shape == (1, 1)  # the nested way SBD stores it
    bad = tmp_path / "dataset/cls/2007_000001.mat"
    scipy.io.savemat(bad, {"GTcls": {"Boundaries": np.zeros(1)}})
    with pytest.raises(DataError, match="GTcls.Segmentation") as e:
        ds.validate()
    assert e.value.path == bad


def test_train_aug_merges_sbd_without_voc_val(tmp_path):
    _voc(tmp_path / "voc")
    _sbd(tmp_path / "sbd")
    ds = VOC(tmp_path / "voc", "train_aug", sbd_root=tmp_path / "sbd")
    # SBD train + val + VOC train, less VOC val (2007_000003)
    assert ds.names == ["2007_000001", "2007_000002", "2008_000100"]
    assert ds.sources == ["voc", "voc", "sbd"]
    from_voc, from_sbd = ds.load(0), ds.load(2)
    assert from_voc.semantic[5, 5] == 255 and from_voc.semantic[0, 0] == 0
    assert from_sbd.semantic[5, 5] == 0 and from_sbd.semantic[0, 0] == DOG
    with pytest.raises(DataError, match="sbd_root"):
        VOC(tmp_path / "voc", "train_aug")
