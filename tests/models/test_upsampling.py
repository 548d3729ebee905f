"""Tests for perpixel.models.upsampling."""

import pytest
import torch
import torch.nn.functional as F

from perpixel.engine.export import export_onnx
from perpixel.models.upsampling import (
    UPSAMPLING,
    BedOfNails,
    Bilinear,
    MaxUnpool,
    Nearest,
    TransposedUp,
    _max_unpool_by_comparison,
    bed_of_nails,
    bilinear,
    bilinear_kernel,
    build_upsampling,
    max_unpool,
    nearest,
    transposed_kernel_size,
)

SCALES = [1, 2, 3, 4, 5, 8, 16, 32]


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_shapes_and_modules(scale):
    x = rand(2, 3, 5, 7)
    want = (2, 3, 5 * scale, 7 * scale)
    for fn, module in [(nearest, Nearest), (bed_of_nails, BedOfNails), (bilinear, Bilinear)]:
        assert fn(x, scale).shape == want
        assert torch.equal(module(scale)(x), fn(x, scale))
    assert TransposedUp(3, scale)(x).shape == want


@pytest.mark.parametrize("scale", [2, 3])
def test_nearest_and_bed_of_nails(scale):
    x = rand(2, 3, 5, 7)
    assert torch.equal(
        nearest(x, scale), x.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    )
    y = bed_of_nails(x, scale)
    assert torch.equal(y[..., ::scale, ::scale], x)
    y[..., ::scale, ::scale] = 0
    assert not y.any()


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("size", [(12, 18), (13, 17), (7, 5)])
def test_max_unpool_puts_values_back_at_the_argmax(size, scale, ceil_mode):
    y = rand(2, 3, *size)
    pooled, idx = F.max_pool2d(y, scale, scale, ceil_mode=ceil_mode, return_indices=True)
    out = max_unpool(pooled, idx, scale, size)
    assert out.shape == y.shape
    assert torch.equal(out, MaxUnpool(scale)(pooled, idx, size))
    # what ONNX export runs is the same
    torch.testing.assert_close(
        out, _max_unpool_by_comparison(pooled, idx, scale, size), rtol=0, atol=0
    )
    # every pooled value at its argmax, zeros elsewhere
    flat = out.flatten(2)
    torch.testing.assert_close(flat.gather(2, idx.flatten(2)), pooled.flatten(2), rtol=0, atol=0)
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(2, idx.flatten(2), True)
    assert not flat[~mask].any()
    assert mask.sum() == pooled.numel()  # one position per cell
    # pooling again gives the same values from the same positions
    again, idx2 = F.max_pool2d(
        out.masked_fill(~mask.view_as(out), -1e9),
        scale,
        scale,
        ceil_mode=ceil_mode,
        return_indices=True,
    )
    assert torch.equal(again, pooled) and torch.equal(idx2, idx)


def test_max_unpool_of_non_negative_maps_repools_exactly():
    y = rand(1, 4, 9, 11).relu()  # after a ReLU, as in SegNet: zeros never beat the maximum
    pooled, idx = F.max_pool2d(y, 2, 2, ceil_mode=True, return_indices=True)
    out = max_unpool(pooled, idx, 2, (9, 11))
    assert torch.equal(F.max_pool2d(out, 2, 2, ceil_mode=True), pooled)


def test_bilinear_kernel_is_long_et_al_upsample_filt():
    w = bilinear_kernel(3, 4)
    assert w.shape == (3, 3, 4, 4)
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    for i in range(3):
        assert torch.equal(w[i, i], taps[:, None] * taps[None, :])
    w[range(3), range(3)] = 0
    assert not w.any()  # no mixing between channels
    odd = bilinear_kernel(1, 5)[0, 0, 2]  # scale 3: taps (1/3, 2/3, 1, 2/3, 1/3)
    torch.testing.assert_close(odd, torch.tensor([1, 2, 3, 2, 1]) / 3)
    assert [transposed_kernel_size(s) for s in (1, 2, 3, 8, 32)] == [1, 4, 5, 16, 64]


@pytest.mark.parametrize("scale", SCALES)
def test_bilinear_transposed_up_is_bilinear_of_the_zero_padded_input(scale):
    x = rand(2, 3, 5, 7, dtype=torch.float64)
    up = TransposedUp(3, scale).double()
    with torch.no_grad():  # the float64 kernel: 1/3 is not a float32
        up.weight.copy_(bilinear_kernel(3, transposed_kernel_size(scale), torch.float64))
    y = up(x)
    torch.testing.assert_close(TransposedUp(3, scale)(x.float()), y.float(), rtol=0, atol=1e-5)
    assert y.shape == (2, 3, 5 * scale, 7 * scale)
    s = scale
    padded = bilinear(F.pad(x, (1, 1, 1, 1)), scale)[..., s:-s, s:-s]
    torch.testing.assert_close(y, padded, rtol=0, atol=1e-12)
    # so it is bilinear interpolation except in the outer floor(scale / 2) rows and columns
    b, m = bilinear(x, scale), scale // 2
    inner = (slice(None), slice(None), slice(m, y.shape[-2] - m), slice(m, y.shape[-1] - m))
    torch.testing.assert_close(y[inner], b[inner], rtol=0, atol=1e-12)
    for r in range(m):  # each border row and column differs
        for side in (r, -1 - r):
            assert (y[..., side, :] - b[..., side, :]).abs().max() > 1e-3
            assert (y[..., :, side] - b[..., :, side]).abs().max() > 1e-3


def test_transposed_up_options():
    learnable, fixed = TransposedUp(4, 2), TransposedUp(4, 2, learnable=False)
    assert [n for n, _ in learnable.named_parameters()] == ["weight"]
    assert list(fixed.parameters()) == [] and not fixed.weight.requires_grad
    assert set(fixed.state_dict()) == {"weight"}  # saved, and under the same key
    fixed.load_state_dict(learnable.state_dict())
    x = rand(1, 4, 3, 5)
    assert torch.equal(fixed(x), learnable(x))
    random = TransposedUp(4, 2, bilinear_init=False)
    assert random.weight.shape == (4, 4, 4, 4)
    assert not torch.equal(random.weight, bilinear_kernel(4, 4))
    learnable(x).sum().backward()
    assert learnable.weight.grad is not None and learnable.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(set(UPSAMPLING) - {"max_unpool"}))
def test_build_upsampling(name):
    module = build_upsampling(name, 3, 2)
    assert isinstance(module, UPSAMPLING[name])
    x = rand(1, 3, 5, 7)
    assert module(x).shape == (1, 3, 10, 14)


def test_build_upsampling_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match="unknown upsampling 'max_unpool'"):
        build_upsampling("max_unpool", 3, 2)
    with pytest.raises(ValueError, match=r"'cubic'.*\['bed_of_nails', 'bilinear'"):
        build_upsampling("cubic", 3, 2)


class _AllOperators(torch.nn.Module):
    """(B, 3, H, W) -> (B, 15, H, W): each operator applied to a 2x2 max-pool, cropped back."""

    def __init__(self):
        super().__init__()
        self.transposed = TransposedUp(3, 2)

    def forward(self, x):
        h, w = x.shape[-2:]
        y, idx = F.max_pool2d(x, 2, 2, ceil_mode=True, return_indices=True)
        ups = [nearest(y, 2), bed_of_nails(y, 2), bilinear(y, 2), self.transposed(y)]
        return torch.cat([max_unpool(y, idx, 2, (h, w))] + [u[..., :h, :w] for u in ups], 1)


def test_operators_export_to_onnx_with_dynamic_sizes(tmp_path):
    r = export_onnx(_AllOperators(), tmp_path / "up.onnx", sample_size=(16, 24))
    assert r["checked_size"] == [2, 3, 53, 37]  # odd sizes, other than the traced one
    assert r["max_abs_diff"] < 1e-5
