"""The per-pixel classifier on a fixed filter-bank (texture) feature stack: the classic
"before convnets" baseline.

The bank is the 17-filter bank of Winn, Criminisi & Minka, "Object categorization by learned
universal visual dictionary", ICCV 2005 (also TextonBoost's, Shotton et al., ECCV 2006): on
the image in CIE Lab, Gaussians at sigma 1, 2, 4 on L, a and b (9 responses); Laplacians of
Gaussian at sigma 1, 2, 4, 8 on L (4); x and y first derivatives of Gaussian at sigma 2, 4
on L (4).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.base import Model

# sRGB (D65) -> CIE XYZ, and the D65 white point
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H + 2 pad, W + 2 pad), mirrored about the edge pixels without
    repeating them (numpy's and `F.pad`'s "reflect"), for any `pad`: a pad of H or more
    reflects again about the new edges; a side of one pixel is replicated."""
    ph = pw = pad
    while ph > 0 or pw > 0:
        h, w = x.shape[-2:]
        if h == 1 and ph > 0:
            x, ph = F.pad(x, (0, 0, ph, ph), mode="replicate"), 0
        if w == 1 and pw > 0:
            x, pw = F.pad(x, (pw, pw, 0, 0), mode="replicate"), 0
        sh, sw = min(ph, x.shape[-2] - 1), min(pw, x.shape[-1] - 1)
        if sh or sw:
            x = F.pad(x, (sw, sw, sh, sh), mode="reflect")
        ph, pw = ph - sh, pw - sw
    return x


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 3, H, W) CIE Lab (D65) divided by 100: L in [0, 1],
    a and b about [-1, 1]. Values outside [0, 1] are clamped first."""
    x = x.clamp(0, 1)
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(_RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    white = torch.tensor(_D65_WHITE, dtype=x.dtype, device=x.device)
    xyz = torch.einsum("kc,bchw->bkhw", m, lin) / white.view(1, 3, 1, 1)
    eps = (6 / 29) ** 3
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1) / 100


def gaussian_kernels(sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1-D kernels (2r + 1,), r = ceil(3 sigma), for cross-correlation: the Gaussian (sums to
    1), its scale-normalised first derivative (sums to 0; a ramp of slope s per pixel
    gives sigma s) and second derivative (sums to 0; x^2 / 2 gives sigma^2)."""
    r = math.ceil(3 * sigma)
    i = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(i**2) / (2 * sigma**2))
    g = g / g.sum()
    d = i * g
    d = d / (i * d).sum()
    dd = (i**2 / sigma**2 - 1) * g
    dd = dd - g * dd.sum()  # exactly zero-mean, so a constant image gives zero
    dd = dd / ((i**2 * dd).sum() / 2)
    return g.float(), (sigma * d).float(), (sigma**2 * dd).float()


class FilterBank(nn.Module):
    """The fixed (not learnable) filter bank: (B, C, H, W) in [0, 1] -> (B, F, H, W).

    With C = 3 the image is converted to Lab (`rgb_to_lab`) and F = 3 len(gaussian_sigmas) +
    len(log_sigmas) + 2 len(dog_sigmas) (17 by default, in that order: Gaussians on L, a, b
    per sigma; LoG on L; x then y derivative on L per sigma); any other C applies the whole
    bank to each channel as it is (F = C (len(gaussian) + len(log) + 2 len(dog))). Filters
    are separable (the LoG a sum of two separable ones), truncated at 3 sigma, scale
    normalised (sigma d/dx, sigma^2 Laplacian) and applied with reflect padding, so output
    size = input size and a constant image gives exactly-zero LoG and derivative responses.
    `names` lists the features, e.g. "G1_L", "LoG8", "Dx2".
    """

    def __init__(
        self,
        in_channels: int = 3,
        gaussian_sigmas: tuple[float, ...] = (1, 2, 4),
        log_sigmas: tuple[float, ...] = (1, 2, 4, 8),
        dog_sigmas: tuple[float, ...] = (2, 4),
    ):
        super().__init__()
        self.in_channels = in_channels
        self.lab = in_channels == 3
        self.gaussian_sigmas = [float(s) for s in gaussian_sigmas]
        self.log_sigmas = [float(s) for s in log_sigmas]
        self.dog_sigmas = [float(s) for s in dog_sigmas]
        sigmas = sorted({*self.gaussian_sigmas, *self.log_sigmas, *self.dog_sigmas})
        if not sigmas or min(sigmas) <= 0:
            raise ValueError("FilterBank: needs at least one sigma, and every sigma > 0")
        self._index = {s: k for k, s in enumerate(sigmas)}
        for k, s in enumerate(sigmas):  # buffers, not parameters, and not in the state dict
            for kind, kernel in zip("gdh", gaussian_kernels(s), strict=True):
                self.register_buffer(f"{kind}{k}", kernel, persistent=False)
        self.radius = max(math.ceil(3 * s) for s in sigmas)
        chans = ["_L", "_a", "_b"] if self.lab else [f"_c{c}" for c in range(in_channels)]
        lum = [""] if self.lab else chans
        names = [f"G{s:g}{c}" for s in self.gaussian_sigmas for c in chans]
        names += [f"LoG{s:g}{c}" for s in self.log_sigmas for c in lum]
        names += [f"D{a}{s:g}{c}" for s in self.dog_sigmas for a in "xy" for c in lum]
        self.names = names
        self.out_channels = len(names)

    def kernels(self, sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The (Gaussian, first, second derivative) 1-D kernels at `sigma`."""
        k = self._index[float(sigma)]
        return getattr(self, f"g{k}"), getattr(self, f"d{k}"), getattr(self, f"h{k}")

    def _separable(
        self, xp: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, n: int
    ) -> torch.Tensor:
        """`xp` (B, n, H + 2 radius, W + 2 radius) -> (B, n, H, W): ky along y, kx along x.
        `n` is an int from the options, so that an ONNX trace has fixed kernel shapes."""
        c = self.radius - (ky.numel() - 1) // 2
        xp = xp[..., c : -c or None, c : -c or None]
        k = ky.numel()
        xp = F.conv2d(xp, ky.view(1, 1, k, 1).expand(n, 1, k, 1), groups=n)
        return F.conv2d(xp, kx.view(1, 1, 1, k).expand(n, 1, 1, k), groups=n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        colour = rgb_to_lab(x) if self.lab else x
        cp = reflect_pad(colour, self.radius)
        lp = cp[:, :1] if self.lab else cp
        nc, nl = self.in_channels, 1 if self.lab else self.in_channels
        out = []
        for s in self.gaussian_sigmas:
            g, _, _ = self.kernels(s)
            out.append(self._separable(cp, g, g, nc))
        for s in self.log_sigmas:
            g, _, h = self.kernels(s)
            out.append(self._separable(lp, h, g, nl) + self._separable(lp, g, h, nl))
        for s in self.dog_sigmas:
            g, d, _ = self.kernels(s)
            out += [self._separable(lp, g, d, nl), self._separable(lp, d, g, nl)]
        return torch.cat(out, dim=1)


class FilterBankLinear(Model):
    """`FilterBank` features, standardised, then a learnable 1x1 classifier.

    Input (B, in_channels, H, W) in [0, 1], any H and W; output (B, num_classes, H, W)
    logits. Only the classifier learns: the bank's filters are fixed buffers, and
    `standardise` is a BatchNorm2d without affine parameters whose running statistics are
    the cumulative mean and variance of the (fixed) features over training. `hidden: 0` is
    multi-class logistic regression on the 17 features; `hidden: N` a 1x1 MLP (one hidden
    layer of N units, ReLU).
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 2,
        "gaussian_sigmas": [1, 2, 4],  # on L, a and b (on each channel unless in_channels 3)
        "log_sigmas": [1, 2, 4, 8],  # Laplacian of Gaussian, on L
        "dog_sigmas": [2, 4],  # x and y derivatives of Gaussian, on L
        "hidden": 0,
        "standardise": True,
    }
    output = "logits"

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        c = self.conf
        self.bank = FilterBank(
            c["in_channels"], c["gaussian_sigmas"], c["log_sigmas"], c["dog_sigmas"]
        )
        n = self.bank.out_channels
        self.norm: nn.Module = (
            nn.BatchNorm2d(n, affine=False, momentum=None) if c["standardise"] else nn.Identity()
        )
        if c["hidden"]:
            self.classifier: nn.Module = nn.Sequential(
                nn.Conv2d(n, c["hidden"], 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c["hidden"], c["num_classes"], 1),
            )
        else:
            self.classifier = nn.Conv2d(n, c["num_classes"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.norm(self.bank(x)))
