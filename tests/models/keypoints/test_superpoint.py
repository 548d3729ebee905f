"""Tests for perpixel.models.keypoints.superpoint."""

import math

import pytest
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError
from perpixel.models import build_model
from perpixel.models.keypoints import KeypointOutputs, MagicPoint, SuperPoint, sample_descriptors

from ..base import ModelTester

SMALL = {"channels": [4, 4, 8, 8], "head_channels": 8, "descriptor_dim": 6}


class TestSuperPoint(ModelTester):
    name = "superpoint"
    model_class = SuperPoint
    conf = SMALL
    other_in_channels = 3


class TestSuperPointBatchNorm(ModelTester):
    name = "superpoint"
    model_class = SuperPoint
    conf = {**SMALL, "batch_norm": True}
    other_in_channels = 3


class TestMagicPoint(ModelTester):
    name = "magicpoint"
    model_class = MagicPoint
    conf = {"channels": [4, 4, 8, 8], "head_channels": 8}
    other_in_channels = 3


# ---------------------------------------------------------------- the released weights


def released_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of SuperPointNet in magicleap/SuperPointPretrainedNetwork
    (demo_superpoint.py): c1..c5 = 64, 64, 128, 128, 256, d1 = 256, gray input."""
    convs = {
        "conv1a": (64, 1, 3),
        "conv1b": (64, 64, 3),
        "conv2a": (64, 64, 3),
        "conv2b": (64, 64, 3),
        "conv3a": (128, 64, 3),
        "conv3b": (128, 128, 3),
        "conv4a": (128, 128, 3),
        "conv4b": (128, 128, 3),
        "convPa": (256, 128, 3),
        "convPb": (65, 256, 1),
        "convDa": (256, 128, 3),
        "convDb": (256, 256, 1),
    }
    shapes = {}
    for name, (cout, cin, k) in convs.items():
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)
    return shapes


def released_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in released_shapes().items()}


def released_forward(sd: dict[str, torch.Tensor], x: torch.Tensor):
    """SuperPointNet.forward written out with the functional API."""

    def conv(name, y, relu=True):
        w = sd[f"{name}.weight"]
        y = F.conv2d(y, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)
        return F.relu(y) if relu else y

    for k in range(1, 5):
        x = conv(f"conv{k}b", conv(f"conv{k}a", x))
        if k < 4:
            x = F.max_pool2d(x, 2, 2)
    semi = conv("convPb", conv("convPa", x), relu=False)
    desc = conv("convDb", conv("convDa", x), relu=False)
    return semi, desc / desc.norm(dim=1, keepdim=True)


def test_state_dict_keys_are_the_released_ones():
    model = SuperPoint()
    sd = model.state_dict()
    assert set(sd) == set(released_shapes())
    assert {k: tuple(v.shape) for k, v in sd.items()} == released_shapes()


def test_released_state_dict_loads_strictly_and_runs_the_released_forward():
    sd = released_state_dict()
    model = SuperPoint()
    model.load_state_dict(sd, strict=True)
    model.eval()
    x = torch.rand(1, 1, 120, 160)
    with torch.no_grad():
        out = model(x)
        semi, desc = released_forward(sd, x)
    assert out["logits"].shape == (1, 65, 15, 20)
    assert out["descriptors"].shape == (1, 256, 15, 20)
    torch.testing.assert_close(out["logits"], semi)
    torch.testing.assert_close(out["descriptors"], desc)


def test_magicpoint_is_the_detector_alone():
    model = MagicPoint()
    assert model.conf["descriptors"] is False
    released = released_state_dict()
    detector = {k: v for k, v in released.items() if not k.startswith("convD")}
    assert set(model.state_dict()) == set(detector)
    model.load_state_dict(detector, strict=True)
    with torch.no_grad():
        out = model.eval()(torch.rand(2, 1, 16, 32))
    assert set(out) == {"logits"} and out["logits"].shape == (2, 65, 2, 4)
    assert KeypointOutputs(model)(torch.rand(1, 1, 8, 8))[0].shape == (1, 65, 1, 1)
    assert len(KeypointOutputs(model)(torch.rand(1, 1, 8, 8))) == 1


def test_batch_norm_layers_only_when_asked():
    assert not any("bn" in k for k in SuperPoint(**SMALL).state_dict())
    keys = SuperPoint(**SMALL, batch_norm=True).state_dict()
    names = [f"bn{k}{s}" for k in range(1, 5) for s in "ab"] + ["bnPa", "bnDa"]
    assert {k.rsplit(".", 1)[0] for k in keys if k.startswith("bn")} == set(names)
    # the 1x1 output layers keep their bias (the logits learn the dustbin prior)
    assert "convPb.bias" in keys and "convDb.bias" in keys
    with pytest.raises(RuntimeError, match="bn1a"):
        SuperPoint(batch_norm=True).load_state_dict(released_state_dict())


def test_rgb_is_converted_to_gray():
    torch.manual_seed(0)
    model = SuperPoint(**SMALL).eval()
    rgb = torch.rand(2, 3, 16, 24)
    gray = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]
    with torch.no_grad():
        a, b = model(rgb), model(gray)
    for k in ("logits", "descriptors"):
        torch.testing.assert_close(a[k], b[k])
    with pytest.raises(ValueError, match="1-channel images, got 2"):
        model(torch.rand(1, 2, 16, 24))


def test_sizes_must_be_multiples_of_8():
    model = SuperPoint(**SMALL)
    with pytest.raises(ValueError, match="17x24 is not a multiple of 8"):
        model(torch.rand(1, 1, 17, 24))
    with pytest.raises(ValueError, match="16x20"):
        model(torch.rand(1, 1, 16, 20))


def test_four_encoder_stages():
    with pytest.raises(ConfigError, match="channels needs 4 entries"):
        build_model({"name": "superpoint", "channels": [4, 4, 8]})


# ---------------------------------------------------------------- sample_descriptors


def bilinear_by_hand(desc: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """desc (D, Hc, Wc) at pixel (x, y): cell coordinates, clamped to the outer centres."""
    _, hc, wc = desc.shape
    u = min(max((x - 3.5) / 8, 0.0), wc - 1.0)
    v = min(max((y - 3.5) / 8, 0.0), hc - 1.0)
    j0, i0 = min(math.floor(u), wc - 2), min(math.floor(v), hc - 2)
    a, b = u - j0, v - i0
    d = (
        (1 - a) * (1 - b) * desc[:, i0, j0]
        + a * (1 - b) * desc[:, i0, j0 + 1]
        + (1 - a) * b * desc[:, i0 + 1, j0]
        + a * b * desc[:, i0 + 1, j0 + 1]
    )
    return d / d.norm()


def test_sample_descriptors_is_bilinear_between_cell_centres():
    g = torch.Generator().manual_seed(0)
    desc = torch.randn(2, 5, 3, 4, generator=g)
    pts = [
        torch.tensor([[3.5, 3.5], [11.5, 19.5], [7.0, 5.0], [20.25, 13.75], [27.5, 19.5]]),
        torch.tensor([[0.0, 0.0], [31.9, 23.9], [-4.0, 40.0]]),  # beyond the outer centres
    ]
    got = sample_descriptors(desc, pts)
    assert [d.shape for d in got] == [(5, 5), (3, 5)]
    for b in range(2):
        want = torch.stack([bilinear_by_hand(desc[b], float(x), float(y)) for x, y in pts[b]])
        torch.testing.assert_close(got[b], want)
    # a cell centre reads that cell exactly: (11.5, 19.5) is cell row 2, col 1
    torch.testing.assert_close(got[0][1], F.normalize(desc[0, :, 2, 1], dim=0))
    # a (B, N, 2) tensor is the same as a list
    same = sample_descriptors(desc, torch.stack([pts[0][:3], pts[1]]))
    torch.testing.assert_close(same[0], got[0][:3])
    torch.testing.assert_close(same[1], got[1])


def test_sample_descriptors_edge_cases():
    desc = torch.randn(1, 4, 1, 3)  # one row of cells
    got = sample_descriptors(desc, [torch.tensor([[11.5, 0.0], [11.5, 7.0]])])[0]
    torch.testing.assert_close(got, F.normalize(desc[0, :, 0, 1], dim=0).expand(2, 4))
    assert sample_descriptors(desc, [torch.zeros(0, 2)])[0].shape == (0, 4)
    with pytest.raises(ValueError, match="2 keypoint sets for 1"):
        sample_descriptors(desc, [torch.zeros(1, 2)] * 2)
