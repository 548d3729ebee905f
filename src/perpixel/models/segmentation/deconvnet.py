"""DeconvNet (Noh, Hong & Han, ICCV 2015): a VGG16 encoder and its mirror of unpooling and
transposed convolutions; layout as the reference DeconvNet_inference_deploy.prototxt."""

from __future__ import annotations

import torch
import torch.nn as nn

from perpixel.models.backbones.vgg import VGG16_CONVS, VGG16_WIDTHS
from perpixel.models.layers import pad_to_multiple
from perpixel.models.segmentation.segnet import UnpoolingVGG, conv_bn, vgg16_bn_encoder


class DeconvNet(UnpoolingVGG):
    """VGG16 encoder (13 3x3 convolutions + BN + ReLU, 2x2 max-pools keeping their indices),
    fc6 (7x7 convolution to `fc_channels`) and fc7 (1x1), deconv-fc6 (7x7 transposed
    convolution back to the last encoder width), each + BN + ReLU, then per stage, coarsest
    first: unpool with the indices, the stage's 3x3 transposed convolutions (+ BN + ReLU) in
    reverse, the last one narrowing to the next stage's width (deconv5_1 .. deconv1_2), and a
    1x1 convolution to the classes (seg-score).

    The paper's fc6 is a valid 7x7 on the 7x7 pool5 of a 224x224 input and deconv-fc6 grows
    its 1x1 back to 7x7; here both pad by 3 ('same'), so that any size works: the input
    (B, 3, H, W) RGB in [0, 1] (fed Caffe BGR as VGG16 was trained on) is padded to a
    multiple of 32 inside and the output (B, num_classes, H, W) logits cropped back. Batch
    norm in training needs pool5 bigger than 1x1 for a batch of 1 (H or W > 32).
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 21,
        # `load_pretrained()`'s start for the encoder convolutions: "hed", "imagenet", a
        # VGG16 state-dict file, or None (random); see VGGUNet
        "encoder_weights": "hed",
        "widths": list(VGG16_WIDTHS),  # encoder widths; pretrained weights need VGG16's
        "fc_channels": 4096,  # fc6 and fc7
    }

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        widths, fc = list(c["widths"]), c["fc_channels"]
        self.backbone = vgg16_bn_encoder(widths)
        self.fc6 = conv_bn(widths[-1], fc, 7)
        self.fc7 = conv_bn(fc, fc, 1)
        self.deconv_fc6 = conv_bn(fc, widths[-1], 7, transposed=True)
        self.decoder = nn.ModuleList()  # coarsest first
        for k in reversed(range(len(widths))):
            n, width = VGG16_CONVS[k], widths[k]
            outs = [width] * (n - 1) + [widths[max(k - 1, 0)]]
            cins = [width] + outs[:-1]
            convs = [conv_bn(a, b, transposed=True) for a, b in zip(cins, outs, strict=True)]
            self.decoder.append(nn.Sequential(*convs))
        self.head = nn.Conv2d(widths[0], c["num_classes"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2 ** len(self.backbone))
        y, pooled = self.encode(x)
        y = self.deconv_fc6(self.fc7(self.fc6(y)))
        return self.head(self.decode(y, pooled))[..., :h, :w]
