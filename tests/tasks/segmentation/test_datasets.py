"""Tests for perpixel.tasks.segmentation.datasets: folder datasets and their errors that name the file."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perpixel.data.images import ImageFolder
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import DataError
from perpixel.tasks.segmentation.datasets import CamVid, FolderSegmentation
from tests.conftest import SHARED_DATA

H, W = 8, 12
CAMVID_ROOT = SHARED_DATA / "camvid"
COLOURS = {0: (200, 0, 0), 1: (0, 200, 0), 2: (0, 0, 200)}


def write_image(path: Path, seed: int = 0, size=(H, W)) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def write_mask(path: Path, seed: int = 0, size=(H, W), num_classes: int = 3) -> np.ndarray:
    mask = np.random.default_rng(seed + 100).integers(0, num_classes, size, dtype=np.uint8)
    mask[0, 0] = 255  # one ignored pixel
    Image.fromarray(mask, mode="L").save(path)
    return mask


def make_folder(root: Path, n: int = 3, classes: str | None = "sky\nroad\ncar\n") -> dict:
    """root/images/img{i}.png, root/masks/img{i}.png, root/classes.txt; returns written arrays."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    if classes is not None:
        (root / "classes.txt").write_text(classes)
    written = {}
    for i in range(n):
        image = write_image(root / "images" / f"img{i}.png", seed=i)
        mask = write_mask(root / "masks" / f"img{i}.png", seed=i)
        written[f"img{i}"] = (image, mask)
    return written


# ---------------------------------------------------------------- good folders


def test_good_folder_loads(tmp_path):
    written = make_folder(tmp_path)
    ds = FolderSegmentation(tmp_path)
    assert len(ds) == 3
    assert ds.taxonomy.names == ["sky", "road", "car"]
    ds.validate()
    for i in range(3):
        item = ds[i]
        assert set(item) == {"image", "mask", "name"}
        image, mask = written[item["name"]]
        assert item["image"].shape == (3, H, W)
        assert item["image"].dtype == torch.float32
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
        expected = torch.from_numpy(image).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(item["image"], expected)
        assert item["mask"].shape == (H, W)
        assert item["mask"].dtype == torch.int64
        assert torch.equal(item["mask"], torch.from_numpy(mask.astype(np.int64)))


def test_split_subfolder_with_classes_in_root(tmp_path):
    make_folder(tmp_path / "val", n=2, classes=None)
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    ds = FolderSegmentation(tmp_path, split="val")
    assert len(ds) == 2
    assert ds[0]["mask"].shape == (H, W)


def test_jpeg_images_match_png_masks_by_stem(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    write_image(tmp_path / "images" / "photo.jpg")
    mask = write_mask(tmp_path / "masks" / "photo.png")
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    ds = FolderSegmentation(tmp_path)
    assert len(ds) == 1
    assert ds[0]["name"] == "photo"
    assert torch.equal(ds[0]["mask"], torch.from_numpy(mask.astype(np.int64)))


def test_colour_masks_mapped_to_ids(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "classes.txt").write_text(
        "".join(f"class{i} {r} {g} {b}\n" for i, (r, g, b) in COLOURS.items())
    )
    ids = np.random.default_rng(0).integers(0, 3, (H, W), dtype=np.uint8)
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    for i, c in COLOURS.items():
        rgb[ids == i] = c
    write_image(tmp_path / "images" / "a.png")
    Image.fromarray(rgb).save(tmp_path / "masks" / "a.png")
    ds = FolderSegmentation(tmp_path)
    assert ds.taxonomy.colors_given
    assert torch.equal(ds[0]["mask"], torch.from_numpy(ids.astype(np.int64)))


def test_grey_rgb_mask_without_colours_reads_ids(tmp_path):
    make_folder(tmp_path, n=1)
    ids = np.random.default_rng(1).integers(0, 3, (H, W), dtype=np.uint8)
    Image.fromarray(np.stack([ids] * 3, -1)).save(tmp_path / "masks" / "img0.png")
    ds = FolderSegmentation(tmp_path)
    assert torch.equal(ds[0]["mask"], torch.from_numpy(ids.astype(np.int64)))


def test_palette_mask_index_is_class_id(tmp_path):
    make_folder(tmp_path, n=1)
    ids = np.random.default_rng(2).integers(0, 3, (H, W), dtype=np.uint8)
    im = Image.fromarray(ids, mode="P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (3 * 253))
    im.save(tmp_path / "masks" / "img0.png")
    ds = FolderSegmentation(tmp_path)
    assert torch.equal(ds[0]["mask"], torch.from_numpy(ids.astype(np.int64)))


def test_ignore_value_255_accepted(tmp_path):
    make_folder(tmp_path, n=1)
    Image.fromarray(np.full((H, W), 255, np.uint8), mode="L").save(tmp_path / "masks" / "img0.png")
    ds = FolderSegmentation(tmp_path)
    assert (ds[0]["mask"] == 255).all()


def test_custom_ignore_index(tmp_path):
    make_folder(tmp_path, n=1)
    mask = np.full((H, W), 3, np.uint8)
    Image.fromarray(mask, mode="L").save(tmp_path / "masks" / "img0.png")
    assert (FolderSegmentation(tmp_path, ignore_index=3)[0]["mask"] == 3).all()
    with pytest.raises(DataError, match="img0.png"):
        FolderSegmentation(tmp_path)[0]  # 3 is outside classes 0..2 when 255 is the ignore


def test_explicit_taxonomy_needs_no_classes_file(tmp_path):
    make_folder(tmp_path, n=1, classes=None)
    ds = FolderSegmentation(tmp_path, taxonomy=Taxonomy(["x", "y", "z"]))
    assert ds.taxonomy.names == ["x", "y", "z"]
    assert ds[0]["mask"].shape == (H, W)


def test_transform_is_applied(tmp_path):
    make_folder(tmp_path, n=1)

    def flip(sample):
        return {**sample, "image": sample["image"].flip(-1), "mask": sample["mask"].flip(-1)}

    plain = FolderSegmentation(tmp_path)[0]
    flipped = FolderSegmentation(tmp_path, transform=flip)[0]
    assert torch.equal(flipped["mask"], plain["mask"].flip(-1))


def test_masks_iterator(tmp_path):
    written = make_folder(tmp_path, n=2)
    masks = list(FolderSegmentation(tmp_path).masks())
    assert [m.tolist() for m in masks] == [written[f"img{i}"][1].tolist() for i in range(2)]


# ---------------------------------------------------------------- bad folders


def test_corrupt_image(tmp_path):
    make_folder(tmp_path, n=2)
    (tmp_path / "images" / "img1.png").write_bytes(np.random.default_rng(0).bytes(200))
    ds = FolderSegmentation(tmp_path)
    ds[0]  # the good one still loads
    with pytest.raises(DataError, match="img1.png") as e:
        ds[1]
    assert e.value.path == tmp_path / "images" / "img1.png"
    with pytest.raises(DataError, match="img1.png"):
        ds.validate()


def test_corrupt_mask(tmp_path):
    make_folder(tmp_path, n=1)
    (tmp_path / "masks" / "img0.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="img0.png") as e:
        FolderSegmentation(tmp_path)[0]
    assert e.value.path.parent.name == "masks"


def test_mask_size_differs_from_image(tmp_path):
    make_folder(tmp_path, n=1)
    write_mask(tmp_path / "masks" / "img0.png", size=(H + 1, W))
    with pytest.raises(DataError, match="img0.png") as e:
        FolderSegmentation(tmp_path)[0]
    assert e.value.path == tmp_path / "masks" / "img0.png"
    assert f"{W}x{H + 1}" in str(e.value) and f"{W}x{H}" in str(e.value)


def test_label_outside_taxonomy(tmp_path):
    make_folder(tmp_path, n=1)
    mask = np.zeros((H, W), np.uint8)
    mask[2, 3] = 7
    Image.fromarray(mask, mode="L").save(tmp_path / "masks" / "img0.png")
    with pytest.raises(DataError, match="img0.png") as e:
        FolderSegmentation(tmp_path)[0]
    assert "7" in str(e.value)


def test_16bit_label_too_large(tmp_path):
    make_folder(tmp_path, n=1)
    mask = np.zeros((H, W), np.uint16)
    mask[0, 0] = 1000
    Image.fromarray(mask).save(tmp_path / "masks" / "img0.png")
    with pytest.raises(DataError, match="img0.png"):
        FolderSegmentation(tmp_path)[0]


def test_empty_images_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "classes.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="images") as e:
        FolderSegmentation(tmp_path)
    assert e.value.path == tmp_path / "images"


def test_missing_images_folder(tmp_path):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="images"):
        FolderSegmentation(tmp_path)


def test_missing_masks_folder(tmp_path):
    make_folder(tmp_path, n=1)
    for p in (tmp_path / "masks").iterdir():
        p.unlink()
    (tmp_path / "masks").rmdir()
    with pytest.raises(DataError, match="masks") as e:
        FolderSegmentation(tmp_path)
    assert e.value.path == tmp_path / "masks"


def test_image_without_mask(tmp_path):
    make_folder(tmp_path, n=2)
    write_image(tmp_path / "images" / "lonely.png")
    with pytest.raises(DataError, match="lonely.png"):
        FolderSegmentation(tmp_path)


def test_missing_classes_file(tmp_path):
    make_folder(tmp_path, n=1, classes=None)
    with pytest.raises(DataError, match="classes.txt"):
        FolderSegmentation(tmp_path)


def test_colour_mask_with_unknown_colour(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "classes.txt").write_text(
        "".join(f"class{i} {r} {g} {b}\n" for i, (r, g, b) in COLOURS.items())
    )
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[:] = COLOURS[0]
    rgb[1, 1] = (1, 2, 3)
    write_image(tmp_path / "images" / "street.png")
    Image.fromarray(rgb).save(tmp_path / "masks" / "street.png")
    with pytest.raises(DataError, match="street.png") as e:
        FolderSegmentation(tmp_path)[0]
    assert "(1, 2, 3)" in str(e.value)


def test_colour_mask_without_colours_in_classes_file(tmp_path):
    make_folder(tmp_path, n=1)
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "masks" / "img0.png")
    with pytest.raises(DataError, match="img0.png"):
        FolderSegmentation(tmp_path)[0]


# ---------------------------------------------------------------- ImageFolder


def test_image_folder(tmp_path):
    a = write_image(tmp_path / "a.png", seed=1)
    write_image(tmp_path / "b.jpg", seed=2)
    ds = ImageFolder(tmp_path)
    assert len(ds) == 2
    item = ds[0]
    assert item["name"] == "a"
    assert item["path"] == str(tmp_path / "a.png")
    torch.testing.assert_close(item["image"], torch.from_numpy(a).permute(2, 0, 1).float() / 255)
    assert len(ImageFolder(tmp_path / "a.png")) == 1


def test_image_folder_empty(tmp_path):
    with pytest.raises(DataError):
        ImageFolder(tmp_path)


# ---------------------------------------------------------------- CamVid


def test_camvid_bad_split_list_names_the_file(tmp_path):
    (tmp_path / "train.txt").write_text("train/a.png trainannot/a.png\ntrain/b.png\n")
    with pytest.raises(DataError, match="train.txt") as e:
        CamVid(tmp_path, "train")
    assert "line 2" in str(e.value)


def test_camvid_missing_split_list(tmp_path):
    with pytest.raises(DataError, match="val.txt"):
        CamVid(tmp_path, "val")


def test_camvid_empty_split_list(tmp_path):
    (tmp_path / "test.txt").write_text("\n")
    with pytest.raises(DataError, match="test.txt"):
        CamVid(tmp_path, "test")


def test_camvid_missing_image_names_the_file(tmp_path):
    (tmp_path / "train.txt").write_text("train/gone.png trainannot/gone.png\n")
    with pytest.raises(DataError, match="gone.png"):
        CamVid(tmp_path, "train")[0]


@pytest.fixture(scope="module")
def camvid_root() -> Path:
    if not (CAMVID_ROOT / "train.txt").is_file():
        pytest.skip(f"CamVid not found at {CAMVID_ROOT}")
    return CAMVID_ROOT


@pytest.mark.parametrize(("split", "size"), [("train", 367), ("val", 101), ("test", 233)])
def test_camvid_real_data(camvid_root, split, size):
    ds = CamVid(camvid_root, split)
    assert len(ds) == size
    assert ds.taxonomy.num_classes == 11
    assert ds.taxonomy.ignore_index == 11
    for i in (0, size - 1):
        item = ds[i]
        assert item["image"].shape == (3, 360, 480)
        assert item["image"].dtype == torch.float32
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
        assert item["image"].max() > 0.1  # not an all-black read
        assert item["mask"].shape == (360, 480)
        assert item["mask"].dtype == torch.int64
        assert 0 <= item["mask"].min() and item["mask"].max() <= 11
