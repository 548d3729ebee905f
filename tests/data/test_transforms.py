"""Tests for perpixel.data.transforms: image and mask stay aligned under every transform.

The test images encode the label: image channel 0 = label / 10, so `round(10 * image[0])`
reads the label back wherever the image was not blended across a label boundary.
"""

import pytest
import torch

from perpixel.data.transforms import (
    ColorJitter,
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    build_transform,
)


def pixel_sample(h: int = 40, w: int = 50, seed: int = 0) -> dict:
    """Independent random labels 0..9 at every pixel; channels 1, 2 = column, row coordinates."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, 10, (h, w), generator=g)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) / h
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w) / w
    return {"image": torch.stack([mask / 10, cols, rows]), "mask": mask}


def block_sample(block: int = 32, h: int = 96, w: int = 128) -> dict:
    """Large constant blocks whose labels differ by 1 between neighbours (resampling-friendly)."""
    r = torch.arange(h // block)[:, None]
    c = torch.arange(w // block)[None, :]
    mask = ((r + c) % 10).repeat_interleave(block, 0).repeat_interleave(block, 1)
    image = torch.stack([mask / 10, torch.full((h, w), 0.3), torch.full((h, w), 0.6)]).float()
    return {"image": image, "mask": mask}


def read_label(image: torch.Tensor) -> torch.Tensor:
    return (image[0] * 10).round().long()


def agreement(sample: dict) -> float:
    return (read_label(sample["image"]) == sample["mask"]).float().mean().item()


# ---------------------------------------------------------------- RandomScale


@pytest.mark.parametrize("seed", range(6))
def test_scale_keeps_alignment(seed):
    torch.manual_seed(seed)
    src = block_sample()
    out = RandomScale(0.5, 2.0)(src)
    h, w = out["image"].shape[-2:]
    assert out["mask"].shape == (h, w)
    assert out["mask"].dtype == torch.int64
    assert 0.5 * 96 - 1 <= h <= 2 * 96 + 1 and 0.5 * 128 - 1 <= w <= 2 * 128 + 1
    assert abs(h / 96 - w / 128) < 0.03  # one factor for both axes
    assert agreement(out) >= 0.95
    assert set(out["mask"].unique().tolist()) <= set(src["mask"].unique().tolist())


def test_scale_by_two_repeats_each_mask_pixel():
    src = pixel_sample(10, 12)
    out = RandomScale(2.0, 2.0)(src)
    expected = src["mask"].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(out["mask"], expected)
    assert out["image"].shape == (3, 20, 24)
    assert 0 <= out["image"].min() and out["image"].max() <= 1


def test_scale_without_mask():
    out = RandomScale(0.5, 0.5)({"image": torch.rand(3, 20, 30)})
    assert out["image"].shape == (3, 10, 15)
    assert "mask" not in out


def test_scale_mask_samples_pixel_centres():
    # every 3x3 cell has label 1 at its centre and 0 elsewhere; downscaling by 3 the image
    # is centred on each cell's middle pixel, so the mask should read the centre label
    cell = torch.zeros(3, 3, dtype=torch.long)
    cell[1, 1] = 1
    mask = cell.repeat(3, 3)
    sample = {"image": torch.stack([mask / 10] * 3).float(), "mask": mask}
    out = RandomScale(1 / 3, 1 / 3)(sample)
    assert out["mask"].shape == (3, 3)
    assert (out["mask"] == 1).all()


# ---------------------------------------------------------------- RandomCrop


@pytest.mark.parametrize("seed", range(4))
def test_crop_keeps_alignment_and_is_a_window(seed):
    torch.manual_seed(seed)
    src = pixel_sample(40, 50)
    out = RandomCrop((24, 30))(src)
    assert out["image"].shape == (3, 24, 30)
    assert out["mask"].shape == (24, 30)
    assert torch.equal(read_label(out["image"]), out["mask"])
    # the coordinate channels locate the window; the mask is that window of the source
    y = round(out["image"][2, 0, 0].item() * 40)
    x = round(out["image"][1, 0, 0].item() * 50)
    assert torch.equal(out["mask"], src["mask"][y : y + 24, x : x + 30])


def test_crop_positions_vary():
    torch.manual_seed(0)
    src = pixel_sample(40, 50)
    corners = set()
    for _ in range(20):
        out = RandomCrop((10, 10))(src)
        corners.add((out["image"][2, 0, 0].item(), out["image"][1, 0, 0].item()))
    assert len(corners) > 5


def test_crop_larger_than_image_pads_mask_with_ignore():
    src = pixel_sample(10, 12)
    out = RandomCrop((16, 20))(src)
    assert out["image"].shape == (3, 16, 20)
    assert out["mask"].shape == (16, 20)
    assert torch.equal(out["mask"][:10, :12], src["mask"])
    assert torch.equal(out["image"][:, :10, :12], src["image"])
    pad = torch.ones(16, 20, dtype=torch.bool)
    pad[:10, :12] = False
    assert (out["mask"][pad] == 255).all()
    assert (out["image"][:, pad] == 0).all()


def test_crop_padding_one_axis_custom_ignore():
    torch.manual_seed(0)
    src = pixel_sample(30, 12)
    out = RandomCrop((20, 16), ignore_index=11)(src)
    assert out["mask"].shape == (20, 16)
    assert (out["mask"][:, 12:] == 11).all()
    assert (out["mask"][:, :12] <= 9).all()
    assert torch.equal(read_label(out["image"][:, :, :12]), out["mask"][:, :12])


def test_crop_without_mask():
    out = RandomCrop((5, 6))({"image": torch.rand(3, 10, 12)})
    assert out["image"].shape == (3, 5, 6)
    assert "mask" not in out


# ---------------------------------------------------------------- RandomHorizontalFlip


def test_flip_always_flips_both():
    src = pixel_sample(6, 9)
    out = RandomHorizontalFlip(p=1.0)(src)
    assert torch.equal(out["mask"], src["mask"].flip(-1))
    assert torch.equal(out["image"], src["image"].flip(-1))
    assert torch.equal(read_label(out["image"]), out["mask"])


def test_flip_never_with_p_zero():
    src = pixel_sample(6, 9)
    out = RandomHorizontalFlip(p=0.0)(src)
    assert torch.equal(out["mask"], src["mask"])
    assert torch.equal(out["image"], src["image"])


def test_flip_probability():
    torch.manual_seed(0)
    src = pixel_sample(2, 3)
    flips = sum(
        torch.equal(RandomHorizontalFlip(0.5)(src)["mask"], src["mask"].flip(-1))
        for _ in range(400)
    )
    assert 150 < flips < 250
    # and the mask always follows the image
    for _ in range(20):
        out = RandomHorizontalFlip(0.5)(src)
        assert torch.equal(read_label(out["image"]), out["mask"])


# ---------------------------------------------------------------- ColorJitter


def test_color_jitter_changes_image_only():
    torch.manual_seed(0)
    src = {"image": torch.rand(3, 16, 20), "mask": torch.randint(0, 5, (16, 20))}
    mask_before = src["mask"].clone()
    image_before = src["image"].clone()
    out = ColorJitter(0.4)(src)
    assert out["image"].shape == (3, 16, 20)
    assert out["image"].dtype == torch.float32
    assert not torch.allclose(out["image"], image_before)
    assert torch.equal(out["mask"], mask_before)
    assert torch.equal(src["image"], image_before)  # the input sample is not modified
    assert out["image"].min() >= 0 and out["image"].max() <= 1


def test_color_jitter_reproducible():
    src = {"image": torch.rand(3, 8, 8), "mask": torch.zeros(8, 8, dtype=torch.long)}
    torch.manual_seed(3)
    a = ColorJitter(0.3)(src)["image"]
    torch.manual_seed(3)
    b = ColorJitter(0.3)(src)["image"]
    torch.manual_seed(4)
    c = ColorJitter(0.3)(src)["image"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ---------------------------------------------------------------- build_transform


GEOMETRY = {"scale": [0.75, 1.5], "crop": [48, 64], "hflip": True}


def test_build_transform_none_or_empty():
    assert build_transform(None) is None
    assert build_transform({}) is None
    assert build_transform({"hflip": False}) is None


def test_build_transform_unknown_option_raises():
    with pytest.raises(ValueError, match="rotate"):
        build_transform({"rotate": 10})


def test_build_transform_order():
    t = build_transform({**GEOMETRY, "color_jitter": 0.2})
    assert isinstance(t, Compose)
    kinds = [type(x) for x in t.transforms]
    assert kinds == [RandomScale, RandomCrop, RandomHorizontalFlip, ColorJitter]


@pytest.mark.parametrize("seed", range(4))
def test_full_pipeline_keeps_alignment(seed):
    torch.manual_seed(seed)
    out = build_transform(GEOMETRY)(block_sample())
    assert out["image"].shape == (3, 48, 64)
    assert out["mask"].shape == (48, 64)
    assert agreement(out) >= 0.95


def test_full_pipeline_pads_with_ignore_index():
    torch.manual_seed(0)
    t = build_transform({"scale": [0.5, 0.5], "crop": [64, 80]}, ignore_index=11)
    out = t(block_sample())  # 48 x 64 after scaling: padded to 64 x 80
    assert out["mask"].shape == (64, 80)
    assert (out["mask"][48:] == 11).all()
    assert (out["mask"][:, 64:] == 11).all()


def test_hflip_probability_option():
    src = pixel_sample(4, 5)
    out = build_transform({"hflip": 1.0})(src)
    assert torch.equal(out["mask"], src["mask"].flip(-1))


def test_full_pipeline_reproducible_and_jitter_leaves_geometry():
    conf = {**GEOMETRY, "color_jitter": 0.3}
    src = block_sample()
    torch.manual_seed(7)
    a = build_transform(conf)(src)
    torch.manual_seed(7)
    b = build_transform(conf)(src)
    assert torch.equal(a["image"], b["image"])
    assert torch.equal(a["mask"], b["mask"])
    # jitter runs last: same seed, same geometry as the pipeline without jitter
    torch.manual_seed(7)
    geometry_only = build_transform(GEOMETRY)(src)
    assert torch.equal(a["mask"], geometry_only["mask"])
    assert not torch.allclose(a["image"], geometry_only["image"])
    assert a["image"].min() >= 0 and a["image"].max() <= 1
    # a different seed gives a different sample
    torch.manual_seed(8)
    c = build_transform(conf)(src)
    assert not (c["image"].shape == a["image"].shape and torch.equal(c["image"], a["image"]))


def test_instances_follow_the_mask_through_every_geometric_transform():
    from perpixel.data.transforms import RandomCrop, RandomHorizontalFlip, RandomScale

    torch.manual_seed(0)
    mask = torch.randint(0, 5, (21, 34))
    inst = mask * 100_003  # ids past 2^16: exact through the resize
    sample = {"image": torch.rand(3, 21, 34), "mask": mask, "instances": inst}
    for t in (RandomScale(0.6, 1.7), RandomCrop((40, 30)), RandomHorizontalFlip(1.0)):
        for _ in range(3):
            out = t(sample)
            padded = out["mask"] == 255
            assert torch.equal(out["instances"][~padded], out["mask"][~padded] * 100_003)
            assert (out["instances"][padded] == 0).all()
