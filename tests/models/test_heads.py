"""Tests for perpixel.models.heads, and the resolution that output stride and dilation give."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.backbones import build_backbone
from perpixel.models.heads import (
    ASPP,
    ASPPV2,
    BatchNorm2d,
    DeepLabV3PlusDecoder,
    FPNSemanticHead,
    LargeFOV,
    PyramidPooling,
    bin_average_pool,
)

# ---------------------------------------------------------------- bin pooling

POOL_SIZES = [(1, 1), (2, 5), (5, 7), (6, 6), (13, 4), (17, 29)]


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
@pytest.mark.parametrize("size", POOL_SIZES)
def test_bin_average_pool_equals_adaptive_average_pooling(bins, size):
    g = torch.Generator().manual_seed(bins)
    # integer values sum without rounding: the averages are bit-identical
    x = torch.randint(-50, 50, (2, 3, *size), generator=g).float()
    assert torch.equal(bin_average_pool(x, bins), F.adaptive_avg_pool2d(x, bins))
    x = torch.randn(2, 3, *size, generator=g)
    torch.testing.assert_close(
        bin_average_pool(x, bins), F.adaptive_avg_pool2d(x, bins), rtol=1e-6, atol=1e-6
    )


class _Pool(nn.Module):
    def __init__(self, bins: int):
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bin_average_pool(x, self.bins)


@pytest.mark.parametrize("bins", [3, 6])
def test_bin_average_pool_exports_for_any_size(tmp_path, bins):
    import onnxruntime as ort

    path = tmp_path / "pool.onnx"
    torch.onnx.export(
        _Pool(bins),
        (torch.rand(1, 2, 12, 18),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}},
        opset_version=17,
        dynamo=False,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in [(5, 7), (17, 29), (40, 3)]:  # not multiples of the traced size or the bins
        x = torch.rand(2, 2, *size)
        (got,) = sess.run(["y"], {"x": x.numpy()})
        np.testing.assert_allclose(got, F.adaptive_avg_pool2d(x, bins).numpy(), atol=1e-6)


# ---------------------------------------------------------------- heads' shapes


def test_largefov_and_aspp_v2_give_class_scores_at_the_feature_size():
    x = torch.rand(2, 6, 5, 7)
    assert LargeFOV(6, 4, channels=8, rate=12)(x).shape == (2, 4, 5, 7)
    aspp = ASPPV2(6, 4, rates=(6, 12, 18, 24))
    assert len(aspp.branches) == 4
    assert aspp(x).shape == (2, 4, 5, 7)
    # the branches' scores are summed
    torch.testing.assert_close(aspp(x), sum(b(x) for b in aspp.branches))


def test_aspp_v3_shapes():
    aspp = ASPP(6, 8, rates=(6, 12, 18)).eval()
    assert len(aspp.branches) == 4  # the 1x1 and three atrous convolutions
    assert aspp.project[0].in_channels == 5 * 8  # + the image pooling branch
    assert aspp(torch.rand(2, 6, 5, 7)).shape == (2, 8, 5, 7)


def test_aspp_image_level_branch_is_constant_over_space():
    torch.manual_seed(0)
    aspp = ASPP(6, 8).eval()
    x = torch.rand(2, 6, 5, 7)
    y = aspp.pool(x)
    assert y.shape == (2, 8, 5, 7)
    assert torch.equal(y, y[..., :1, :1].expand_as(y))
    assert not torch.equal(y[0], y[1])  # but depends on the image
    # it sees every pixel: changing a corner changes the branch everywhere
    x2 = x.clone()
    x2[:, :, -1, -1] += 10
    assert (aspp.pool(x2) - y).abs().amin(dim=(2, 3)).max() > 0


def test_deeplab_v3plus_decoder_upsamples_to_the_low_level_feature():
    decoder = DeepLabV3PlusDecoder(8, 5, low_channels=4, channels=6)
    y = decoder(torch.rand(2, 8, 3, 4), torch.rand(2, 5, 9, 13))
    assert y.shape == (2, 6, 9, 13)


def test_pyramid_pooling_shapes():
    ppm = PyramidPooling(8, channels=6, bins=(1, 2, 3, 6))
    assert [s[0].out_channels for s in ppm.stages] == [2] * 4  # C / 4 per bin
    assert ppm.bottleneck[0].in_channels == 8 + 4 * 2
    for size in [(3, 4), (9, 13)]:  # fewer pixels than bins, too
        assert ppm(torch.rand(2, 8, *size)).shape == (2, 6, *size)


@pytest.mark.parametrize("strides", [(4, 8, 16, 32), (4, 8, 16), (4, 8, 16, 16), (4, 8, 8, 8)])
def test_fpn_semantic_head_scores_at_stride_4(strides):
    h, w = 37, 53
    widths = [3, 4, 5, 6][: len(strides)]
    feats = [
        torch.rand(2, c, math.ceil(h / s), math.ceil(w / s))
        for c, s in zip(widths, strides, strict=True)
    ]
    head = FPNSemanticHead(widths, strides, 5, fpn_channels=8, channels=4)
    assert head(feats).shape == (2, 5, math.ceil(h / 4), math.ceil(w / 4))
    # one block per level at stride 4, then one per 2x upsampling
    assert [len(b) for b in head.semantic] == [max(1, int(math.log2(s / 4))) for s in strides]


def test_fpn_semantic_head_needs_doubling_strides_from_4():
    with pytest.raises(ValueError, match="strides must be 4, 8"):
        FPNSemanticHead([4, 4], [8, 16], 3)
    with pytest.raises(ValueError, match="strides must be 4, 8"):
        FPNSemanticHead([4, 4], [4, 16], 3)


def test_batch_norm_trains_on_one_value_per_channel():
    torch.manual_seed(0)
    bn = BatchNorm2d(3).train()
    ref = nn.BatchNorm2d(3).train()
    ref.load_state_dict(bn.state_dict())
    x = torch.randn(4, 3, 2, 2)
    torch.testing.assert_close(bn(x), ref(x))  # batch statistics as usual
    one = torch.randn(1, 3, 1, 1)
    with pytest.raises(ValueError):
        ref(one)
    torch.testing.assert_close(bn(one), ref.eval()(one))  # the running statistics


# ---------------------------------------------------------------- output stride and dilation

BACKBONE_STRIDES = [("vgg16", 8), ("vgg16", 16)] + [
    (f"resnet{d}", s) for d in (18, 34, 50) for s in (8, 16, 32)
]


@pytest.mark.parametrize(("name", "output_stride"), BACKBONE_STRIDES)
def test_feature_sizes_are_the_input_size_over_the_stride_rounded_up(name, output_stride):
    widths = [2, 2, 3, 3, 4] if name == "vgg16" else [2, 2, 3, 4]
    backbone = build_backbone(name, 3, output_stride, widths).eval()
    assert backbone.strides[-1] == output_stride
    h, w = 37, 53
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, h, w))
    assert [tuple(f.shape[-2:]) for f in feats] == [
        (math.ceil(h / s), math.ceil(w / s)) for s in backbone.strides
    ]


def _offsets_read(conv: nn.Conv2d, size: int) -> set[tuple[int, int]]:
    """The (dy, dx) input offsets that the output at the centre depends on."""
    x = torch.rand(1, conv.in_channels, size, size, requires_grad=True)
    c = size // 2
    conv(x)[0, :, c, c].sum().backward()
    assert x.grad is not None
    nz = x.grad.abs().sum(1)[0].nonzero().tolist()
    return {(i - c, j - c) for i, j in nz}


@pytest.mark.parametrize("rate", [1, 2, 6, 12])
def test_atrous_convolution_reads_the_pixels_at_offsets_of_its_rate(rate):
    torch.manual_seed(0)
    want = {(dy, dx) for dy in (-rate, 0, rate) for dx in (-rate, 0, rate)}
    aspp = ASPP(2, 3, rates=(rate,))
    assert _offsets_read(aspp.branches[1][0], 4 * rate + 1) == want
    assert _offsets_read(ASPPV2(2, 3, rates=(rate,)).branches[0], 4 * rate + 1) == want
    assert _offsets_read(LargeFOV(2, 3, channels=2, rate=rate).fc6, 4 * rate + 1) == want
    assert _offsets_read(aspp.branches[0][0], 4 * rate + 1) == {(0, 0)}  # the 1x1 branch
