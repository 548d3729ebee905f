"""U-Net (Ronneberger et al. 2015) for per-pixel classification, any input size."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_block(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by (batch norm and) ReLU."""
    layers: list[nn.Module] = []
    for c_in in (cin, cout):
        layers.append(nn.Conv2d(c_in, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Up(nn.Module):
    """Upsample by 2, concatenate the skip connection, convolve."""

    def __init__(self, cin: int, cskip: int, cout: int, mode: str, batch_norm: bool):
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            cup = cin // 2
        elif mode == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            cup = cin
        else:
            raise ValueError(f"unknown upsampling {mode!r}: use 'transpose' or 'bilinear'")
        self.conv = conv_block(cup + cskip, cout, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """Encoder-decoder with skip connections.

    Input (B, in_channels, H, W) RGB in [0, 1], any H and W: the input is padded to a
    multiple of 2**depth and the output cropped back. Output (B, num_classes, H, W) logits.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 2,
        "depth": 4,  # number of 2x downsamplings
        "base_channels": 32,  # width of the first stage; doubles at every stage
        "max_channels": 512,
        "batch_norm": True,
        "upsample": "transpose",  # or "bilinear"
        "dropout": 0.0,  # before the classifier
    }

    def __init__(self, **conf):
        super().__init__()
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(f"UNet: unknown options {sorted(unknown)}")
        self.conf = c = {**self.default_conf, **conf}
        widths = [min(c["base_channels"] * 2**i, c["max_channels"]) for i in range(c["depth"] + 1)]
        self.widths = widths
        self.stem = conv_block(c["in_channels"], widths[0], c["batch_norm"])
        self.down = nn.ModuleList(
            conv_block(widths[i], widths[i + 1], c["batch_norm"]) for i in range(c["depth"])
        )
        self.up = nn.ModuleList(
            Up(widths[i + 1], widths[i], widths[i], c["upsample"], c["batch_norm"])
            for i in reversed(range(c["depth"]))
        )
        self.dropout = nn.Dropout2d(c["dropout"]) if c["dropout"] > 0 else nn.Identity()
        self.head = nn.Conv2d(widths[0], c["num_classes"], 1)

    @property
    def multiple(self) -> int:
        return 2 ** self.conf["depth"]

    def decode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Decoder features, coarsest first; the last one is at the (padded) input scale."""
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        feats = []
        for up in self.up:
            y = up(y, skips.pop())
            feats.append(y)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = self.head(self.dropout(self.decode(x)[-1]))
        return y[..., :h, :w]
