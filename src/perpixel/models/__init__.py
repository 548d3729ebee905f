"""Models, one file per family. `build_model({"name": ..., **options})` makes one."""

from __future__ import annotations

import torch.nn as nn

from perpixel.errors import ConfigError
from perpixel.models.hed import HED
from perpixel.models.linear import PixelLinear
from perpixel.models.unet import UNet
from perpixel.models.unet_edges import UNetEdges

# segmentation models: (B, 3, H, W) -> (B, C, H, W) logits; edge models (hed, unet_edges):
# -> {"fused": (B, 1, H, W), "sides": [...]} logits
MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "linear": PixelLinear,
    "hed": HED,
    "unet_edges": UNetEdges,
}


def build_model(conf: dict) -> nn.Module:
    """Make a model from `{"name": "unet", **options}`; options override `default_conf`."""
    conf = dict(conf)
    name = conf.pop("name", "unet")
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    try:
        return MODELS[name](**conf)
    except ValueError as e:
        raise ConfigError(f"model {name!r}: {e}") from None


__all__ = ["HED", "MODELS", "PixelLinear", "UNet", "UNetEdges", "build_model"]
