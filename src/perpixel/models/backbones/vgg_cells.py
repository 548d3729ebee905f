"""The VGG-style encoder of SuperPoint (DeTone et al. 2018) down to 8x8 cells.

Pairs of 3x3 convolutions + ReLU named like the released SuperPoint weights (`conv1a`,
`conv1b`, `conv2a`, ...), a 2x2 max-pool after every pair but the last: four pairs reach 1/8
resolution. The layers are attributes of the owning module itself (not of a sub-module), so
that state-dict keys read `conv1a.weight`, as in the released checkpoint. Optional batch norm
after each ReLU (`bn1a`, ...) as in rpautrat/SuperPoint's training version.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def vgg_cell_names(stages: int) -> list[str]:
    """The convolutions' names: ["conv1a", "conv1b", "conv2a", ...], two per stage."""
    return [f"conv{k}{s}" for k in range(1, stages + 1) for s in "ab"]


def add_vgg_cells(
    module: nn.Module, in_channels: int, channels: Sequence[int], batch_norm: bool = False
) -> int:
    """Register the encoder's layers on `module`: `conv{k}a`, `conv{k}b` (3x3, width
    channels[k - 1]) and with `batch_norm` `bn{k}a`, `bn{k}b`. Returns the output width."""
    cin = in_channels
    widths = [c for c in channels for _ in "ab"]
    for name, width in zip(vgg_cell_names(len(channels)), widths, strict=True):
        module.add_module(name, nn.Conv2d(cin, width, 3, padding=1))
        if batch_norm:
            module.add_module(name.replace("conv", "bn"), nn.BatchNorm2d(width))
        cin = width
    return cin


def conv_relu_bn(module: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """`module.<name>` (a convolution), ReLU, then `module.<bn name>` where it exists."""
    x = F.relu(getattr(module, name)(x))
    bn = getattr(module, name.replace("conv", "bn", 1), None)
    return x if bn is None else bn(x)


def vgg_cells(module: nn.Module, x: torch.Tensor, stages: int) -> torch.Tensor:
    """Run the layers `add_vgg_cells` registered: (B, in_channels, H, W) ->
    (B, channels[-1], H / 2**(stages - 1), W / 2**(stages - 1)) (floor)."""
    names = vgg_cell_names(stages)
    for i, name in enumerate(names):
        x = conv_relu_bn(module, name, x)
        if name.endswith("b") and i < len(names) - 1:
            x = F.max_pool2d(x, 2, 2)
    return x
