"""Models, one file per family. `build_model({"name": ..., **options})` makes one."""

from __future__ import annotations

import torch.nn as nn

from perpixel.errors import ConfigError
from perpixel.models.linear import PixelLinear
from perpixel.models.unet import UNet

MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "linear": PixelLinear}


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


__all__ = ["MODELS", "PixelLinear", "UNet", "build_model"]
