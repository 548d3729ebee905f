"""Instance and panoptic segmentation models (`output = "panoptic"`)."""

from perpixel.models.panoptic.base import PanopticMaps, PanopticModel, PanopticOutput

__all__ = ["PanopticMaps", "PanopticModel", "PanopticOutput"]
