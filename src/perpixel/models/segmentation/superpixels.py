"""The superpixel baseline, "before convnets": SLIC superpixels (Achanta et al., "SLIC
superpixels compared to state-of-the-art superpixel methods", TPAMI 2012), region features
(the mean of the `FilterBank` texture responses and of the colour over each superpixel, its
centroid and colour spread), and a classifier per region whose logits fill the region.

SLIC runs in scikit-image, in numpy on the CPU, on the detached image: no gradient flows
through the segmentation, and the model cannot be exported to ONNX. The region means are a
scatter-mean in torch, so the classifier trains through the engine like any other model.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from perpixel.errors import PerpixelError
from perpixel.models.base import Model
from perpixel.models.segmentation.filterbank import FilterBank


def region_ids(labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(B, H, W) int64 per-image labels 0 .. n_b - 1 -> ((B H W,) ids unique over the batch:
    image b's region k is n_0 + ... + n_(b-1) + k, the number of regions R)."""
    counts = labels.flatten(1).amax(dim=1) + 1
    offsets = torch.cumsum(counts, 0) - counts
    return (labels + offsets.view(-1, 1, 1)).flatten(), int(counts.sum())


def scatter_mean(values: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """(B, F, H, W) values, (B H W,) region ids in [0, n) -> (n, F) mean over each region's
    pixels (zero for an empty region); differentiable in `values`."""
    flat = values.transpose(0, 1).reshape(values.shape[1], -1)
    sums = flat.new_zeros(flat.shape[0], n).index_add_(1, ids, flat)
    counts = torch.bincount(ids, minlength=n).clamp_min(1).to(flat.dtype)
    return (sums / counts).t()


class SuperpixelLinear(Model):
    """SLIC superpixels, region features, a classifier per region.

    Input (B, in_channels, H, W) in [0, 1], any H and W; output (B, num_classes, H, W)
    logits, constant within each superpixel. Each image gets about H W / segment_pixels
    superpixels (480 x 360 at 400: 432; 256 x 320: 205): the count follows the image size.
    `compactness` trades colour (CIE Lab, 0..100) against distance; images without 3
    channels are scaled to 0..100 first, so it means the same. `sigma` (pixels) smooths the
    image for SLIC alone. Region features (`feature_names`): the filter bank's mean, the mean
    input colour, with `position` the centroid (y, x) / (H, W) in (0, 1), with `colour_std`
    the colour's standard deviation; `standardise` is a BatchNorm1d without affine
    parameters over regions. `hidden: 0` is logistic regression per region, `hidden: N` an
    MLP with one hidden layer of N units (ReLU). Only the classifier learns.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 2,
        "segment_pixels": 400,  # mean superpixel area in pixels
        "compactness": 10.0,
        "sigma": 1.0,  # Gaussian smoothing before SLIC, in pixels
        "gaussian_sigmas": [1, 2, 4],  # the bank, as in filterbank_linear
        "log_sigmas": [1, 2, 4, 8],
        "dog_sigmas": [2, 4],
        "position": True,
        "colour_std": True,
        "hidden": 0,
        "standardise": True,
    }
    output = "logits"
    exportable: ClassVar[bool] = False
    not_exportable_because: ClassVar[str] = "SLIC runs in scikit-image"

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        try:
            from skimage.segmentation import slic
        except ImportError:
            raise PerpixelError(
                "superpixel_linear needs scikit-image: pip install 'perpixel[superpixels]'"
            ) from None
        self._slic = slic
        c = self.conf
        if c["segment_pixels"] <= 0:
            raise ValueError("segment_pixels must be > 0")
        self.bank = FilterBank(
            c["in_channels"], c["gaussian_sigmas"], c["log_sigmas"], c["dog_sigmas"]
        )
        chans = (
            ["R", "G", "B"] if c["in_channels"] == 3 else [f"c{k}" for k in range(c["in_channels"])]
        )
        names = [*self.bank.names, *chans]
        names += ["y", "x"] if c["position"] else []
        names += [f"sd_{ch}" for ch in chans] if c["colour_std"] else []
        self.feature_names = names
        n = len(names)
        self.norm: nn.Module = (
            nn.BatchNorm1d(n, affine=False, momentum=None) if c["standardise"] else nn.Identity()
        )
        if c["hidden"]:
            self.classifier: nn.Module = nn.Sequential(
                nn.Linear(n, c["hidden"]),
                nn.ReLU(inplace=True),
                nn.Linear(c["hidden"], c["num_classes"]),
            )
        else:
            self.classifier = nn.Linear(n, c["num_classes"])

    def superpixels(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, H, W) int64 SLIC labels 0 .. n_b - 1 per image, on
        `x`'s device; computed in numpy without gradient."""
        c = self.conf
        b, ch, h, w = x.shape
        images = x.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        if ch != 3:
            images = images * 100  # Lab's range, for which `compactness` is meant
        n_segments = max(1, round(h * w / c["segment_pixels"]))
        out = np.empty((b, h, w), dtype=np.int64)
        for k, image in enumerate(images):
            labels = self._slic(
                image.astype(np.float64),
                n_segments=n_segments,
                compactness=c["compactness"],
                sigma=c["sigma"],
                start_label=0,
                convert2lab=ch == 3,
                channel_axis=-1,
            )
            out[k] = np.unique(labels, return_inverse=True)[1].reshape(h, w)  # 0 .. n - 1
        return torch.from_numpy(out).to(x.device)

    def pixel_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, F', H, W) float32 per-pixel values whose region means (and,
        for `colour_std`, the squared colour's) make the region features: the bank, the
        colour, the (y, x) position in (0, 1), the squared colour."""
        b, _, h, w = x.shape
        stack = [self.bank(x).float(), x.float()]
        if self.conf["position"]:
            ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) / h
            xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w
            grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))
            stack.append(grid.unsqueeze(0).expand(b, 2, h, w))
        if self.conf["colour_std"]:
            stack.append(x.float().square())
        return torch.cat(stack, dim=1)

    def region_features(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images, (B, H, W) labels (`superpixels`) -> (R, F) features of the R
        regions, F = len(feature_names), image 0's regions first (`region_ids`)."""
        ids, n = region_ids(labels)
        means = scatter_mean(self.pixel_features(x), ids, n)
        if not self.conf["colour_std"]:
            return means
        ch, nb = x.shape[1], len(self.bank.names)
        colour, square = means[:, nb : nb + ch], means[:, -ch:]
        std = (square - colour.square()).clamp_min(1e-12).sqrt()
        return torch.cat([means[:, :-ch], std], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels = self.superpixels(x)
        logits = self.classifier(self.norm(self.region_features(x, labels)))  # (R, K)
        ids, _ = region_ids(labels)
        b, _, h, w = x.shape
        return logits[ids].view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
