"""The one `ModelTester` for the panoptic models (their own behaviour: test_panoptic_deeplab.py,
test_mask_rcnn.py)."""

from perpixel.models.panoptic.mask_rcnn import MaskRCNN
from perpixel.models.panoptic.panoptic_deeplab import PanopticDeepLab

from ..base import ModelTester

SMALL_BACKBONE = {"backbone": "resnet18", "backbone_widths": [8, 8, 16, 16, 16]}


class TestPanopticDeepLab(ModelTester):
    name = "panoptic_deeplab"
    model_class = PanopticDeepLab
    num_classes = 4
    conf = {"thing_ids": [2, 3]}


class TestMaskRCNN(ModelTester):
    name = "mask_rcnn"
    model_class = MaskRCNN
    num_classes = 4
    conf = {"thing_ids": [2, 3], "widths": [8, 8, 16, 16], "fpn_channels": 16}
