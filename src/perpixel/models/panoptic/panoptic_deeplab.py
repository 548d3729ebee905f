"""Panoptic-DeepLab (Cheng et al., CVPR 2020): bottom-up panoptic segmentation as dense
prediction. A shared backbone feeds two ASPP + decoder branches at stride 4: the semantic
branch predicts class logits, the instance branch a class-agnostic centre heatmap and, per
pixel, the offset to its instance's centre; inference groups thing pixels to the nearest
predicted centre and fuses with the semantic map (`perpixel.models.panoptic.grouping`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.backbones import build_backbone
from perpixel.models.heads import ASPP, BatchNorm2d, conv_bn_relu, resize
from perpixel.models.panoptic.base import PanopticModel, PanopticOutput
from perpixel.models.panoptic.grouping import (
    find_centers,
    group_pixels,
    instance_scores,
    is_thing,
    merge_panoptic,
    panoptic_targets,
)


def separable(cin: int, cout: int, kernel: int = 5) -> nn.Sequential:
    """Depthwise `kernel` x `kernel` conv + BN + ReLU, pointwise 1x1 to `cout` + BN + ReLU:
    (B, cin, h, w) -> (B, cout, h, w)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin, bias=False),
        BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        conv_bn_relu(cin, cout),
    )


class PanopticDecoder(nn.Module):
    """One branch's decoder: `ASPP` (to `aspp_channels`) on the coarsest feature, then for
    each skip feature, coarsest first, the skip 1x1 to its `project` width + BN + ReLU, the
    running feature upsampled (bilinear) to it, concatenated, a 5x5 depthwise-separable conv
    to `channels`: (B, cin, h, w), skips [(B, skip_channels[k], h_k, w_k)] finest first ->
    (B, channels, h_0, w_0)."""

    def __init__(
        self,
        cin: int,
        skip_channels: Sequence[int],
        project: Sequence[int],
        aspp_channels: int,
        channels: int,
        rates: Sequence[int],
        dropout: float,
    ):
        super().__init__()
        if len(project) != len(skip_channels):
            raise ValueError(f"need one projection width per skip feature, got {list(project)}")
        self.aspp = ASPP(cin, aspp_channels, rates, dropout)
        self.project = nn.ModuleList(
            conv_bn_relu(c, p) for c, p in zip(skip_channels, project, strict=True)
        )
        widths = [channels] * (len(project) - 1) + [aspp_channels]  # of the incoming feature
        self.fuse = nn.ModuleList(
            separable(w + p, channels) for w, p in zip(widths, project, strict=True)
        )

    def forward(self, x: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        y = self.aspp(x)
        for k in reversed(range(len(skips))):
            s = self.project[k](skips[k])
            y = self.fuse[k](torch.cat([resize(y, s.shape[-2:]), s], 1))
        return y


def prediction_head(cin: int, channels: int, cout: int) -> nn.Sequential:
    """5x5 depthwise-separable conv to `channels`, 1x1 conv to `cout` (initialised N(0, 1e-3),
    as the reference): (B, cin, h, w) -> (B, cout, h, w)."""
    out = nn.Conv2d(channels, cout, 1)
    nn.init.normal_(out.weight, 0.0, 1e-3)
    assert out.bias is not None
    nn.init.zeros_(out.bias)
    return nn.Sequential(separable(cin, channels), out)


class PanopticDeepLab(PanopticModel):
    """Panoptic-DeepLab: backbone (`build_backbone`; dilated to `output_stride`), semantic and
    instance `PanopticDecoder`s on its stride-8 and stride-4 features, heads for semantic
    logits, centre heatmap and offsets.

    Input (B, in_channels, H, W) RGB in [0, 1], any H and W. `forward` returns
    {"semantic": (B, num_classes, H, W) logits, "center": (B, 1, H, W) heatmap,
    "offset": (B, 2, H, W) (dy, dx) centre - pixel in input pixels}, each predicted at stride 4
    and upsampled bilinearly (offsets predicted in stride-4 units and scaled by 4).

    Losses: semantic bootstrapped cross entropy (the mean over the `top_k_percent` hardest
    pixels of the batch; void pixels count as 0), centre MSE over non-void non-crowd pixels,
    offset L1 (|dy| + |dx|) over instance pixels, weighted by the `*_loss_weight` options.
    The defaults are the paper's Cityscapes settings (ResNet-50); see the README for a small
    CPU configuration.
    """

    default_conf: ClassVar[dict[str, Any]] = {
        **PanopticModel.default_conf,
        "backbone": "resnet50",  # "resnet18", "resnet34", "resnet50" or "vgg16"
        "backbone_widths": None,  # stage widths; None: the standard ones (pretrained weights)
        "backbone_weights": None,  # see BackboneSegmenter; None: random
        "output_stride": 16,
        "aspp_rates": [6, 12, 18],  # at output stride 16, scaled to `output_stride`
        "aspp_channels": 256,
        "dropout": 0.1,  # in the ASPPs
        "semantic_channels": 256,  # semantic decoder width
        "semantic_project": [32, 64],  # skip projections at strides 4, 8
        "semantic_head_channels": 256,
        "instance_channels": 128,
        "instance_project": [16, 32],
        "instance_head_channels": 32,
        # targets and losses
        "sigma": 8.0,  # centre Gaussian, input pixels
        "top_k_percent": 0.2,  # bootstrapped CE: the hardest fraction of pixels (1: plain)
        "small_instance_area": 4096,  # instances below this many pixels weigh
        "small_instance_weight": 3.0,  # this much in the semantic loss
        "semantic_loss_weight": 1.0,
        "center_loss_weight": 200.0,
        "offset_loss_weight": 0.01,
        # inference
        "center_threshold": 0.1,
        "nms_kernel": 7,  # odd
        "top_k": 200,  # at most this many centres per image
        "stuff_area": 2048,  # smaller stuff classes become void
    }

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        self.backbone = build_backbone(
            c["backbone"], c["in_channels"], c["output_stride"], c["backbone_widths"]
        )
        chans = list(cast(list[int], self.backbone.out_channels))
        strides = list(cast(list[int], self.backbone.strides))
        self.skips = [strides.index(4), strides.index(8)]
        self.stride = 4
        skip_ch = [chans[i] for i in self.skips]
        rates = [max(1, r * 16 // strides[-1]) for r in c["aspp_rates"]]
        a, d = c["aspp_channels"], c["dropout"]
        self.semantic_decoder = PanopticDecoder(
            chans[-1], skip_ch, c["semantic_project"], a, c["semantic_channels"], rates, d
        )
        self.instance_decoder = PanopticDecoder(
            chans[-1], skip_ch, c["instance_project"], a, c["instance_channels"], rates, d
        )
        sc, ic = c["semantic_channels"], c["instance_channels"]
        self.semantic_head = prediction_head(sc, c["semantic_head_channels"], c["num_classes"])
        self.center_head = prediction_head(ic, c["instance_head_channels"], 1)
        self.offset_head = prediction_head(ic, c["instance_head_channels"], 2)

    def map_channels(self) -> dict[str, int]:
        return {"semantic": self.conf["num_classes"], "center": 1, "offset": 2}

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        preprocess = cast(Callable[[torch.Tensor], torch.Tensor], self.backbone.preprocess)
        feats = self.backbone(preprocess(image))
        skips = [feats[i] for i in self.skips]
        sem = self.semantic_decoder(feats[-1], skips)
        ins = self.instance_decoder(feats[-1], skips)
        size = image.shape[-2:]
        return {
            "semantic": resize(self.semantic_head(sem), size),
            "center": resize(self.center_head(ins), size),
            "offset": resize(self.offset_head(ins), size) * self.stride,
        }

    def losses(
        self, image: torch.Tensor, semantic: torch.Tensor, instances: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        c = self.conf
        out = self(image)
        t = panoptic_targets(
            semantic,
            instances,
            c["thing_ids"],
            c["sigma"],
            c["ignore_index"],
            c["small_instance_area"],
            c["small_instance_weight"],
        )
        ce = F.cross_entropy(
            out["semantic"], semantic.long(), ignore_index=c["ignore_index"], reduction="none"
        )
        ce = (ce * t.semantic_weight).flatten()
        if c["top_k_percent"] < 1:
            ce = ce.topk(max(1, int(c["top_k_percent"] * ce.numel())), sorted=False).values
        cw, ow = t.center_weight, t.offset_weight
        center = ((out["center"] - t.center) ** 2 * cw).sum() / cw.sum().clamp(min=1)
        offset = ((out["offset"] - t.offset).abs() * ow).sum() / ow.sum().clamp(min=1)
        return {
            "semantic": c["semantic_loss_weight"] * ce.mean(),
            "center": c["center_loss_weight"] * center,
            "offset": c["offset_loss_weight"] * offset,
        }

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> list[PanopticOutput]:
        return self.postprocess(self(image))

    def postprocess(self, out: dict[str, torch.Tensor]) -> list[PanopticOutput]:
        """`forward`'s maps (batch B) -> B `PanopticOutput`s: semantic argmax, centres
        (`find_centers`), grouping of the thing pixels (`group_pixels`), majority-vote fusion
        (`merge_panoptic`) and scored masks (`instance_scores`)."""
        c = self.conf
        probs = out["semantic"].float().softmax(1)
        results = []
        for i, p in enumerate(probs):
            labels = sem = p.argmax(0)  # the semantic branch alone, for IoU
            centers = find_centers(
                out["center"][i], c["center_threshold"], c["nms_kernel"], c["top_k"]
            )
            ids = group_pixels(centers, out["offset"][i].float(), is_thing(sem, c["thing_ids"]))
            sem, ids = merge_panoptic(sem, ids, c["thing_ids"], c["stuff_area"], c["ignore_index"])
            masks, classes, scores = instance_scores(ids, sem, p, out["center"][i])
            results.append(PanopticOutput(sem, ids, masks, classes, scores, labels))
        return results

    def load_pretrained(self) -> str | None:
        """Load the backbone weights named by `backbone_weights`; returns their source."""
        spec = self.conf["backbone_weights"]
        if spec in (None, "none"):
            return None
        from perpixel.models.backbones.weights import load_backbone_weights

        return load_backbone_weights(self.backbone, self.conf["backbone"], str(spec))
