"""Tests for perpixel.tasks.edges.datasets: BSDS500 layouts, synthetic edges, augmentation, batching."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from perpixel.data.transforms import (
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    build_transform,
)
from perpixel.errors import DataError
from perpixel.tasks.edges.datasets import BSDS500, IGNORE, SyntheticEdges
from perpixel.tasks.edges.datasets import collate as collate_edges


def write_gt(path: Path, boundaries: list[np.ndarray]) -> None:
    cell = np.empty((1, len(boundaries)), dtype=object)
    for i, b in enumerate(boundaries):
        cell[0, i] = {
            "Boundaries": b.astype(np.uint8),
            "Segmentation": np.ones(b.shape, np.uint16),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"groundTruth": cell})


def write_image(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)  # PNG: lossless, so the test can compare pixels
    return rgb


def fake_bsds(base: Path, splits=("train", "val"), h: int = 6, w: int = 8) -> Path:
    """Two images per split; image k's annotator a marks row a (and image 1 has 3 annotators)."""
    for split in splits:
        for k in range(2):
            name = f"{split}{k}"
            write_image(base / "images" / split / f"{name}.png", h, w, seed=k)
            n = 2 + k
            bnds = [np.zeros((h, w), bool) for _ in range(n)]
            for a, b in enumerate(bnds):
                b[a] = True
                b[0, 0] = True  # every annotator marks pixel (0, 0)
            write_gt(base / "groundTruth" / split / f"{name}.mat", bnds)
    return base


def test_bsds_sample(tmp_path):
    root = fake_bsds(tmp_path / "bsds500")
    ds = BSDS500(root, "train")
    assert len(ds) == 2
    s = ds[1]
    assert s["image"].shape == (3, 6, 8) and s["image"].dtype == torch.float32
    assert s["edges"].shape == (1, 6, 8) and s["edges"].dtype == torch.float32
    assert s["annotators"] == 3 and s["name"] == "train1"
    rgb = np.array(Image.open(root / "images/train/train1.png"))
    assert torch.equal((s["image"] * 255).round().byte().permute(1, 2, 0), torch.from_numpy(rgb))
    e = s["edges"][0]
    assert e[0, 0] == 1.0  # all 3 annotators
    assert e[0, 1] == pytest.approx(1 / 3) and e[2, 5] == pytest.approx(1 / 3)
    assert e[3:].sum() == 0


@pytest.mark.parametrize("sub", ["", "BSR", "BSR/BSDS500", "BSR/BSDS500/data"])
def test_original_download_layout(tmp_path, sub):
    fake_bsds(tmp_path / "BSR/BSDS500/data")
    ds = BSDS500(tmp_path / sub if sub else tmp_path / "BSR", "train+val")
    assert [ds[i]["name"] for i in range(len(ds))] == ["train0", "train1", "val0", "val1"]
    assert len(BSDS500(tmp_path / "BSR", "train+val", limit=3)) == 3


def test_cache_gives_the_same_samples(tmp_path):
    root = fake_bsds(tmp_path)
    a, b = BSDS500(root, "val"), BSDS500(root, "val", cache=True)
    for i in range(2):
        assert torch.equal(a[i]["image"], b[i]["image"])
        assert torch.equal(a[i]["edges"], b[i]["edges"])
    fractions = [(m.mean(), n) for m, n in b.edge_maps()]
    assert fractions[0][1] == 2 and fractions[0][0] == pytest.approx((8 + 9) / 2 / 48)


def test_bsds_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        BSDS500(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no BSDS500 layout"):
        BSDS500(tmp_path)
    root = fake_bsds(tmp_path / "a")
    with pytest.raises(DataError, match="split folder not found") as e:
        BSDS500(root, "test")
    assert "test" in str(e.value)
    (root / "groundTruth/train/train1.mat").unlink()
    with pytest.raises(DataError, match=r"no ground-truth \.mat for 1 image.*train1"):
        BSDS500(root, "train")
    for p in (root / "images/val").iterdir():
        p.unlink()
    with pytest.raises(DataError, match="no images"):
        BSDS500(root, "val")


def test_size_mismatch_names_the_file(tmp_path):
    root = fake_bsds(tmp_path)
    write_gt(root / "groundTruth/train/train0.mat", [np.zeros((8, 6), bool)])
    ds = BSDS500(root, "train")
    with pytest.raises(DataError, match="6x8 but the image train0.png is 8x6") as e:
        ds[0]
    assert e.value.path.name == "train0.mat"
    with pytest.raises(DataError, match="train0.mat"):
        ds.validate()


def test_real_bsds(bsds_root):
    ds = BSDS500(bsds_root, "val", limit=2)
    s = ds[0]
    assert s["image"].shape[1:] in ((321, 481), (481, 321))
    assert s["edges"].shape[1:] == s["image"].shape[1:]
    assert 4 <= s["annotators"] <= 9
    e = s["edges"]
    assert 0 < e.mean() < 0.2 and e.max() == 1.0
    # fractions are multiples of 1/N
    c = e * s["annotators"]
    assert torch.allclose(c, c.round(), atol=1e-5)
    assert len(BSDS500(bsds_root, "train+val")) == 300


def test_synthetic_edges():
    ds = SyntheticEdges(3, seed=5, height=32, width=40)
    s = ds[2]
    assert s["image"].shape == (3, 32, 40) and s["edges"].shape == (1, 32, 40)
    assert s["annotators"] == 1
    assert set(s["edges"].unique().tolist()) == {0.0, 1.0}
    assert 0.01 < s["edges"].mean() < 0.3
    again = SyntheticEdges(3, seed=5, height=32, width=40)[2]
    assert torch.equal(again["edges"], s["edges"]) and torch.equal(again["image"], s["image"])
    with pytest.raises(ValueError, match="unknown options"):
        SyntheticEdges(1, colour=3)


def coded_sample(h: int = 20, w: int = 30) -> dict:
    """Image channel 0 is the edge map: transforms must keep them equal."""
    g = torch.Generator().manual_seed(0)
    edges = (torch.rand(1, h, w, generator=g) > 0.8).float()
    image = torch.cat([edges, torch.rand(2, h, w, generator=g)])
    return {"image": image, "edges": edges, "annotators": 1, "name": "x"}


def test_flip_and_crop_move_edges_with_the_image():
    torch.manual_seed(0)
    for t in (RandomHorizontalFlip(1.0), RandomCrop((7, 9))):
        out = t(coded_sample())
        assert torch.equal(out["image"][:1], out["edges"])
    out = RandomHorizontalFlip(1.0)(coded_sample())
    assert torch.equal(out["edges"], coded_sample()["edges"].flip(-1))


def test_crop_pads_with_ignore():
    torch.manual_seed(0)
    out = RandomCrop((25, 32))(coded_sample())
    assert out["image"].shape == (3, 25, 32) and out["edges"].shape == (1, 25, 32)
    assert (out["edges"][:, 20:] == IGNORE).all() and (out["edges"][:, :, 30:] == IGNORE).all()
    assert (out["edges"][:, :20, :30] >= 0).all()


def test_scale_resizes_edges_as_fractions():
    torch.manual_seed(0)
    out = RandomScale(2.0, 2.0)(coded_sample())
    assert out["image"].shape == (3, 40, 60) and out["edges"].shape == (1, 40, 60)
    assert torch.allclose(out["image"][:1], out["edges"], atol=1e-6)
    e = out["edges"]
    assert e.min() >= 0 and e.max() <= 1
    # edge mass scales with edge length (x2 per direction for area: x4 here)
    assert e.sum().item() == pytest.approx(4 * coded_sample()["edges"].sum().item(), rel=0.05)


def test_build_transform():
    assert build_transform(None) is None and build_transform({}) is None
    t = build_transform({"scale": [0.5, 1.0], "crop": [16, 16], "hflip": True})
    torch.manual_seed(1)
    out = t(coded_sample())
    assert out["image"].shape == (3, 16, 16) and out["edges"].shape == (1, 16, 16)
    t = build_transform({"color_jitter": 0.3})
    out = t(coded_sample())
    assert torch.equal(out["edges"], coded_sample()["edges"])
    with pytest.raises(ValueError, match="rotate"):
        build_transform({"rotate": 10})


def test_collate_pads_mixed_sizes():
    a, b = coded_sample(20, 30), coded_sample(30, 20)
    b["annotators"] = 5
    batch = collate_edges([a, b])
    assert batch["image"].shape == (2, 3, 30, 30) and batch["edges"].shape == (2, 1, 30, 30)
    assert batch["annotators"].tolist() == [1, 5] and batch["name"] == ["x", "x"]
    assert (batch["edges"][0, :, 20:] == IGNORE).all() and (
        batch["edges"][1, :, :, 20:] == IGNORE
    ).all()
    assert torch.equal(batch["edges"][0, :, :20], a["edges"])
