"""Upsampling operators to pick and compare: a function and a module for each.

Every operator maps (B, C, H, W) -> (B, C, scale * H, scale * W) (`max_unpool`: to the size
it is given). All export to ONNX with dynamic sizes (`max_unpool` by a comparison while
tracing: the ONNX exporter does not take `F.max_unpool2d`).

- `nearest`: each value copied into its scale x scale cell.
- `bed_of_nails`: each value at the top-left of its cell, zeros elsewhere.
- `max_unpool`: each value at the position its max-pool took it from, zeros elsewhere
  (SegNet, DeconvNet); needs the pooling indices.
- `TransposedUp`: a transposed convolution, learnable, initialised to bilinear (FCN).
- `bilinear`: bilinear interpolation with half-pixel centres (`align_corners=False`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _repeat(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W) of any dtype -> (B, C, scale H, scale W), each value repeated over its
    cell."""
    b, c, h, w = x.shape
    cells = x[:, :, :, None, :, None].expand(b, c, h, scale, w, scale)
    return cells.reshape(b, c, h * scale, w * scale)


def nearest(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, scale H, scale W): nearest neighbour (each value fills its
    scale x scale cell)."""
    return F.interpolate(x, scale_factor=float(scale), mode="nearest")


def bed_of_nails(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, scale H, scale W): `x[..., i, j]` at `[..., scale i, scale j]`,
    zeros elsewhere."""
    b, c, h, w = x.shape
    nails = F.pad(x[:, :, :, None, :, None], (0, scale - 1, 0, 0, 0, scale - 1))
    return nails.reshape(b, c, h * scale, w * scale)


def max_unpool(
    x: torch.Tensor, indices: torch.Tensor, scale: int, output_size: tuple[int, int]
) -> torch.Tensor:
    """Put each pooled value back where it was taken from, zeros elsewhere.

    x, indices: (B, C, h, w) from `F.max_pool2d(y, scale, scale, return_indices=True)` (kernel
    = stride = scale, no padding, `ceil_mode` either) of y (B, C, H, W); indices count
    `H_index * W + W_index` in each plane. output_size: (H, W), given since pooling loses it
    (odd sizes). Returns (B, C, H, W): `F.max_unpool2d(x, indices, scale, scale, output_size)`,
    or, while tracing (ONNX export), the same written as a comparison with each position.
    """
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return _max_unpool_by_comparison(x, indices, scale, output_size)
    return F.max_unpool2d(x, indices, (scale, scale), (scale, scale), output_size=output_size)


def _max_unpool_by_comparison(
    x: torch.Tensor, indices: torch.Tensor, scale: int, output_size: tuple[int, int]
) -> torch.Tensor:
    """`max_unpool` for indices that lie in their own scale x scale cell, with operations the
    ONNX exporter takes, dynamic sizes included (4-5x slower than `F.max_unpool2d`)."""
    h, w = output_size
    pad = (0, scale - 1, 0, scale - 1)  # floor-mode pooling drops up to scale - 1 rows/columns
    values = F.pad(_repeat(x, scale), pad)[..., :h, :w]
    where = F.pad(_repeat(indices, scale), pad, value=-1)[..., :h, :w]
    rows = torch.arange(h, device=x.device, dtype=indices.dtype)
    cols = torch.arange(w, device=x.device, dtype=indices.dtype)
    position = rows[:, None] * w + cols[None, :]
    return torch.where(where == position, values, torch.zeros_like(values))


def bilinear(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, scale H, scale W): bilinear, half-pixel centres."""
    return F.interpolate(x, scale_factor=float(scale), mode="bilinear", align_corners=False)


def bilinear_kernel(
    channels: int, kernel_size: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(channels, channels, k, k) transposed-convolution weights that upsample each channel
    bilinearly and mix none: Long et al.'s `upsample_filt` on the diagonal."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 else factor - 0.5
    taps = 1 - (torch.arange(kernel_size, dtype=torch.float64) - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size, dtype=dtype)
    weight[range(channels), range(channels)] = (taps[:, None] * taps[None, :]).to(dtype)
    return weight


def transposed_kernel_size(scale: int) -> int:
    """FCN's kernel size for upsampling by `scale`: 2 scale - scale % 2."""
    return 2 * scale - scale % 2


def transposed_up(x: torch.Tensor, weight: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W), weight (C, C', k, k) with k = `transposed_kernel_size(scale)` ->
    (B, C', scale H, scale W): transposed convolution of stride `scale`, padding (k - scale)
    / 2 (FCN's crop), no bias."""
    k = weight.shape[-1]
    return F.conv_transpose2d(x, weight, stride=scale, padding=(k - scale) // 2)


class Nearest(nn.Module):
    """`nearest` as a module: (B, C, H, W) -> (B, C, scale H, scale W)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nearest(x, self.scale)


class BedOfNails(nn.Module):
    """`bed_of_nails` as a module: (B, C, H, W) -> (B, C, scale H, scale W)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bed_of_nails(x, self.scale)


class MaxUnpool(nn.Module):
    """`max_unpool` as a module: x, indices (B, C, h, w), output_size (H, W) -> (B, C, H, W)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(
        self, x: torch.Tensor, indices: torch.Tensor, output_size: tuple[int, int]
    ) -> torch.Tensor:
        return max_unpool(x, indices, self.scale, output_size)


class Bilinear(nn.Module):
    """`bilinear` as a module: (B, C, H, W) -> (B, C, scale H, scale W)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bilinear(x, self.scale)


class TransposedUp(nn.Module):
    """FCN's upsampling: (B, C, H, W) -> (B, C, scale H, scale W), a transposed convolution
    (C -> C, kernel 2 scale - scale % 2, stride scale, no bias) whose padding crops its output
    to exactly scale times the input.

    With `bilinear_init` its weight is `bilinear_kernel` and, exactly (up to rounding),
    `TransposedUp(x) == bilinear(F.pad(x, (1, 1, 1, 1)), scale)[..., s:-s, s:-s]`
    (s = scale): bilinear interpolation with half-pixel centres of x with a ring of zeros
    around it. So it equals `bilinear(x, scale)` except in the outer floor(scale / 2) rows and
    columns, where `bilinear` replicates the border and this pulls towards zero. Without
    `learnable` the weight is a (saved) buffer, not a parameter: fixed, as FCN's final
    upsampling.
    """

    weight: torch.Tensor

    def __init__(
        self, channels: int, scale: int, bilinear_init: bool = True, learnable: bool = True
    ):
        super().__init__()
        self.scale = scale
        k = transposed_kernel_size(scale)
        if bilinear_init:
            weight = bilinear_kernel(channels, k)
        else:  # ConvTranspose2d's default
            weight = nn.ConvTranspose2d(channels, channels, k, scale, bias=False).weight.data
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return transposed_up(x, self.weight, self.scale)


# the upsampling modules by name; "max_unpool" also needs the pooling indices
UPSAMPLING: dict[str, type[nn.Module]] = {
    "nearest": Nearest,
    "bed_of_nails": BedOfNails,
    "max_unpool": MaxUnpool,
    "transposed": TransposedUp,
    "bilinear": Bilinear,
}


def build_upsampling(name: str, channels: int, scale: int) -> nn.Module:
    """The module `name` (not "max_unpool", which needs indices) upsampling (B, channels, H, W)
    to (B, channels, scale H, scale W); "transposed" is learnable and starts bilinear."""
    if name == "transposed":
        return TransposedUp(channels, scale)
    if name not in UPSAMPLING or name == "max_unpool":
        usable = sorted(set(UPSAMPLING) - {"max_unpool"})
        raise ValueError(f"unknown upsampling {name!r}: use one of {usable}")
    return UPSAMPLING[name](scale)
