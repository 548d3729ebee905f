"""Layers shared by the models and backbones."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_block(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by (batch norm and) ReLU: (B, cin, H, W) ->
    (B, cout, H, W). With batch norm the convolutions have no bias."""
    layers: list[nn.Module] = []
    for c_in in (cin, cout):
        layers.append(nn.Conv2d(c_in, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Up(nn.Module):
    """Upsample by 2, concatenate the skip connection, convolve.

    (B, cin, H, W), skip (B, cskip, 2H, 2W) -> (B, cout, 2H, 2W). `mode`: "transpose" (a
    learned 2x2 transposed convolution to cin // 2 channels) or "bilinear".
    """

    def __init__(self, cin: int, cskip: int, cout: int, mode: str, batch_norm: bool):
        super().__init__()
        if mode == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            cup = cin // 2
        elif mode == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            cup = cin
        else:
            raise ValueError(f"unknown upsampling {mode!r}: use 'transpose' or 'bilinear'")
        self.conv = conv_block(cup + cskip, cout, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


def upsample_to(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, *size), bilinear with half-pixel centres (= `tf.image.resize(...,
    'bilinear')`); unchanged when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, C, H, W) -> ((B, C, H', W'), (H, W)): H and W padded at the bottom/right to the next
    multiple of `m` by replicating the border; crop a result back with `y[..., :H, :W]`.

    Always pads (by zero when H and W are multiples already), so that an ONNX trace holds for
    every input size.
    """
    h, w = x.shape[-2:]
    ph, pw = (m - h % m) % m, (m - w % m) % m
    return F.pad(x, (0, pw, 0, ph), mode="replicate"), (h, w)
