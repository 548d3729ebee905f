"""Models, one file per architecture, grouped by what they output; `build_model({"name": ...,
**options})` makes one, options overriding the model's `default_conf`."""

from __future__ import annotations

from perpixel.errors import ConfigError
from perpixel.models.base import OUTPUT_KINDS, Model
from perpixel.models.edges import HED, UNetEdges
from perpixel.models.keypoints import MagicPoint, SuperPoint
from perpixel.models.panoptic.mask_rcnn import MaskRCNN
from perpixel.models.panoptic.panoptic_deeplab import PanopticDeepLab
from perpixel.models.segmentation import (
    FPN,
    DeconvNet,
    DeepLabV1,
    DeepLabV2,
    DeepLabV3,
    DeepLabV3Plus,
    FCN8s,
    FCN16s,
    FCN32s,
    FilterBankLinear,
    PatchCNN,
    PixelLinear,
    PSPNet,
    SegNet,
    SegNetBasic,
    SuperpixelLinear,
    UNet,
    VGGUNet,
)

MODELS: dict[str, type[Model]] = {
    "unet": UNet,
    "linear": PixelLinear,
    "vgg_unet": VGGUNet,
    "filterbank_linear": FilterBankLinear,
    "patch_cnn": PatchCNN,
    "fcn32s": FCN32s,
    "fcn16s": FCN16s,
    "fcn8s": FCN8s,
    "segnet": SegNet,
    "segnet_basic": SegNetBasic,
    "superpixel_linear": SuperpixelLinear,
    "deconvnet": DeconvNet,
    "deeplab_v1": DeepLabV1,
    "deeplab_v2": DeepLabV2,
    "deeplab_v3": DeepLabV3,
    "deeplab_v3plus": DeepLabV3Plus,
    "pspnet": PSPNet,
    "fpn": FPN,
    "hed": HED,
    "unet_edges": UNetEdges,
    "superpoint": SuperPoint,
    "magicpoint": MagicPoint,
    "panoptic_deeplab": PanopticDeepLab,
    "mask_rcnn": MaskRCNN,
}
# each model's output kind (see `OUTPUT_KINDS`): "logits" (segmentation), "edges",
# "keypoints" or "panoptic"
OUTPUTS: dict[str, str] = {name: cls.output for name, cls in MODELS.items()}


def models_for(output: str) -> list[str]:
    """Names of the models whose output kind is `output`."""
    return sorted(n for n, o in OUTPUTS.items() if o == output)


def check_model_conf(conf: dict, output: str | None = None, task: str = "") -> None:
    """ConfigError unless `conf` names a known model (of kind `output`) with known options."""
    name = conf.get("name", "unet")
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if output is not None and OUTPUTS[name] != output:
        raise ConfigError(
            f"model {name!r} outputs {OUTPUTS[name]}, which {task or 'this'} recipes do not "
            f"take; they take {models_for(output)}"
        )
    unknown = set(conf) - {"name"} - set(MODELS[name].default_conf)
    if unknown:
        raise ConfigError(f"model {name!r}: unknown options {sorted(unknown)}")


def build_model(conf: dict) -> Model:
    """Make a model from `{"name": "unet", **options}`; options override `default_conf`."""
    conf = dict(conf)
    name = conf.pop("name", "unet")
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    try:
        return MODELS[name](**conf)
    except ValueError as e:
        raise ConfigError(f"model {name!r}: {e}") from None


__all__ = [
    "FPN",
    "DeconvNet",
    "DeepLabV1",
    "DeepLabV2",
    "DeepLabV3",
    "DeepLabV3Plus",
    "PSPNet",
    "FCN8s",
    "FCN16s",
    "FCN32s",
    "SegNet",
    "SegNetBasic",
    "SuperpixelLinear",
    "FilterBankLinear",
    "HED",
    "MODELS",
    "OUTPUTS",
    "OUTPUT_KINDS",
    "MagicPoint",
    "Model",
    "PatchCNN",
    "PixelLinear",
    "SuperPoint",
    "UNet",
    "UNetEdges",
    "VGGUNet",
    "build_model",
    "check_model_conf",
    "models_for",
]
