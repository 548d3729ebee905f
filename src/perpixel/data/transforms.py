"""Joint image/label transforms on a sample dict {"image": (3, H, W) float, "mask": (H, W) int64,
and for instance data "instances": (H, W) int64 (0 = none)} or, for edge detection, {"image", "edges": (1, H, W) float fraction of annotators}.

Geometry is applied identically to image and labels (bilinear for the image and the edge
fractions, nearest for the mask; padding is ignored in the loss); colour jitter (kornia)
touches the image only. Randomness comes from torch's
generator, so `lightning.seed_everything(seed, workers=True)` makes a run reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import kornia.augmentation as KA
import torch
import torch.nn.functional as F

EDGE_IGNORE = -1.0  # edge-map value on crop padding: the edge loss ignores it


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand(()).item()


class Compose:
    def __init__(self, transforms: Sequence[Callable[[dict], dict]]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict) -> dict:
        for t in self.transforms:
            sample = t(sample)
        return sample


class RandomScale:
    """Resize image and mask by a factor drawn uniformly from [min_scale, max_scale]."""

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0):
        self.min_scale, self.max_scale = min_scale, max_scale

    def __call__(self, sample: dict) -> dict:
        s = _uniform(self.min_scale, self.max_scale)
        h, w = sample["image"].shape[-2:]
        size = (max(1, round(h * s)), max(1, round(w * s)))
        out = dict(sample)
        out["image"] = F.interpolate(
            sample["image"][None], size=size, mode="bilinear", align_corners=False, antialias=s < 1
        )[0].clamp_(0, 1)
        if "edges" in sample:  # a fraction in [0, 1]: a shrunk edge gets fainter and wider
            out["edges"] = F.interpolate(
                sample["edges"][None],
                size=size,
                mode="bilinear",
                align_corners=False,
                antialias=s < 1,
            )[0].clamp_(0, 1)
        for key in ("mask", "instances"):
            if key in sample:
                # nearest-exact samples at pixel centres, as the bilinear image resize does;
                # through float64, exact for instance ids of any size
                out[key] = F.interpolate(
                    sample[key][None, None].double(), size=size, mode="nearest-exact"
                )[0, 0].long()
        return out


class RandomCrop:
    """Crop (height, width) at a random place; smaller inputs are padded first (image with 0,
    mask with `ignore_index`)."""

    def __init__(self, size: Sequence[int], ignore_index: int = 255):
        self.size = (int(size[0]), int(size[1]))
        self.ignore_index = ignore_index

    def __call__(self, sample: dict) -> dict:
        ch, cw = self.size
        image = sample["image"]
        h, w = image.shape[-2:]
        ph, pw = max(0, ch - h), max(0, cw - w)
        out = dict(sample)
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph), value=0.0)
            if "mask" in sample:
                out["mask"] = F.pad(sample["mask"], (0, pw, 0, ph), value=self.ignore_index)
            if "instances" in sample:
                out["instances"] = F.pad(sample["instances"], (0, pw, 0, ph), value=0)
            if "edges" in sample:
                out["edges"] = F.pad(sample["edges"], (0, pw, 0, ph), value=EDGE_IGNORE)
            h, w = image.shape[-2:]
        y = int(torch.randint(0, h - ch + 1, ()).item())
        x = int(torch.randint(0, w - cw + 1, ()).item())
        out["image"] = image[:, y : y + ch, x : x + cw]
        for key in ("mask", "instances"):
            if key in out:
                out[key] = out[key][y : y + ch, x : x + cw]
        if "edges" in out:
            out["edges"] = out["edges"][:, y : y + ch, x : x + cw]
        return out


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, sample: dict) -> dict:
        if torch.rand(()).item() >= self.p:
            return sample
        out = dict(sample)
        out["image"] = sample["image"].flip(-1)
        for key in ("mask", "instances", "edges"):
            if key in sample:
                out[key] = sample[key].flip(-1)
        return out


class ColorJitter:
    """Brightness, contrast, saturation (each +-strength) and hue (+-strength/4) on the image."""

    def __init__(self, strength: float = 0.2):
        s = float(strength)
        self.jitter = KA.ColorJitter(s, s, s, min(0.5, s / 4), p=1.0, keepdim=True)

    def __call__(self, sample: dict) -> dict:
        out = dict(sample)
        out["image"] = self.jitter(sample["image"]).clamp_(0, 1)
        return out


def build_transform(conf: dict | None, ignore_index: int = 255) -> Compose | None:
    """Training augmentation from a config dict, e.g.
    `{"scale": [0.75, 1.5], "crop": [256, 256], "hflip": true, "color_jitter": 0.2}`;
    None or {} -> no augmentation."""
    if not conf:
        return None
    unknown = set(conf) - {"scale", "crop", "hflip", "color_jitter"}
    if unknown:
        raise ValueError(f"unknown augmentation options {sorted(unknown)}")
    ts: list[Callable[[dict], dict]] = []
    if conf.get("scale"):
        ts.append(RandomScale(*conf["scale"]))
    if conf.get("crop"):
        ts.append(RandomCrop(conf["crop"], ignore_index))
    if conf.get("hflip"):
        ts.append(RandomHorizontalFlip(0.5 if conf["hflip"] is True else float(conf["hflip"])))
    if conf.get("color_jitter"):
        ts.append(ColorJitter(conf["color_jitter"]))
    return Compose(ts) if ts else None
