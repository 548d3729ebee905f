"""Mask R-CNN (He et al., ICCV 2017) with a Panoptic FPN semantic branch (Kirillov et al.,
CVPR 2019), small enough to train on a CPU: a plain conv backbone (strides 2..16), an FPN-lite
(P2, P3, P4 at strides 4, 8, 16), an RPN, box and mask RoI heads and a light semantic head.

Instances are merged over the semantic prediction Panoptic FPN's way: by decreasing score,
those above `instance_score_thresh`, each taking its pixels not yet taken, dropped when less
than `overlap_thresh` of its mask is left; thing pixels of the semantic map that no instance
takes stay with instance 0.

Targets: each (instance id > 0, thing class) region of the maps is one box + mask (its class:
the majority of its pixels); crowd (thing pixels with instance 0) is never an object, and
anchors / proposals lying mostly (`crowd_thresh`) inside crowd pixels are not background
either: they are left out of the sampled training examples.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.detection.boxes import masks_to_boxes, summed_area
from perpixel.models.detection.roi_heads import Detections, RoIHeads, Targets, paste_masks
from perpixel.models.detection.rpn import RegionProposalNetwork
from perpixel.models.layers import pad_to_multiple
from perpixel.models.panoptic.base import PanopticModel, PanopticOutput

LOSSES = ("rpn_cls", "rpn_box", "cls", "box", "mask", "semantic")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"MaskRCNN: unknown norm {kind!r}: use 'batch' or 'group'")


def _conv(cin: int, cout: int, norm: str, stride: int = 1) -> nn.Sequential:
    """3x3 conv + norm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), _norm(norm, cout), nn.ReLU(inplace=True)
    )


class MaskRCNN(PanopticModel):
    """Mask R-CNN + semantic head. `forward(image)` -> {"semantic": (B, num_classes, H, W)
    logits}; the instance branch runs in `losses` and `predict`. Instance class k is
    `thing_ids[k]`. Not exportable (data-dependent control flow)."""

    exportable: ClassVar[bool] = False
    not_exportable_because = (
        "its proposals, NMS and per-RoI masks vary in number from image to image; export "
        "panoptic_deeplab, whose outputs are dense maps"
    )
    thing_label: torch.Tensor  # (max class id + 1,) class id -> label 1..T, 0: not a thing
    thing_class: torch.Tensor  # (T,) label - 1 -> class id
    default_conf: ClassVar[dict[str, Any]] = {
        **PanopticModel.default_conf,
        "widths": [16, 32, 64, 128],  # backbone stages at strides 2, 4, 8, 16 (two convs each)
        "norm": "batch",  # "batch" or "group"
        "fpn_channels": 64,
        "semantic_channels": 64,
        "rpn_strides": [8],  # pyramid levels the RPN sees (4, 8, 16)
        "anchor_sizes": [32, 64, 128],  # pixels, split evenly over `rpn_strides`
        "aspect_ratios": [0.5, 1.0, 2.0],  # height / width
        "rpn_pre_nms_top_n": [1000, 500],  # per level: training, inference
        "rpn_post_nms_top_n": [300, 100],  # per image: training, inference
        "rpn_nms_thresh": 0.7,
        "rpn_batch_size": 256,  # sampled anchors per image
        "box_stride": 8,  # the level box features are pooled from
        "mask_stride": 4,  # the level mask features are pooled from
        "box_pool": 7,
        "mask_pool": 14,  # masks are predicted at twice this size
        "box_hidden": 256,
        "mask_channels": 32,
        "mask_convs": 2,
        "roi_batch_size": 64,  # sampled proposals per image
        "roi_positive_fraction": 0.25,
        "score_thresh": 0.05,  # detections kept (for mask AP)
        "nms_thresh": 0.5,
        "detections_per_image": 100,
        "crowd_thresh": 0.5,
        "mask_threshold": 0.5,
        "instance_score_thresh": 0.5,  # panoptic merge: detections considered
        "overlap_thresh": 0.5,  # panoptic merge: least fraction of a mask left to keep it
        "loss_weights": {k: 1.0 for k in LOSSES},
    }

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        unknown = set(c["loss_weights"]) - set(LOSSES)
        if unknown:
            raise ValueError(f"MaskRCNN: unknown loss_weights {sorted(unknown)}; known: {LOSSES}")
        levels = {4, 8, 16}
        for key in ("rpn_strides", "box_stride", "mask_stride"):
            vals = c[key] if isinstance(c[key], list) else [c[key]]
            if not vals or not set(vals) <= levels:
                raise ValueError(f"MaskRCNN: {key} must be among strides {sorted(levels)}")
        if len(c["anchor_sizes"]) % len(c["rpn_strides"]):
            raise ValueError("MaskRCNN: anchor_sizes must split evenly over rpn_strides")
        w, norm, f = c["widths"], c["norm"], c["fpn_channels"]
        if len(w) != 4:
            raise ValueError("MaskRCNN: widths needs 4 stages (strides 2, 4, 8, 16)")
        self.stages = nn.ModuleList(
            nn.Sequential(_conv(cin, cout, norm, 2), _conv(cout, cout, norm))
            for cin, cout in zip([c["in_channels"], *w[:-1]], w, strict=True)
        )
        self.lateral = nn.ModuleDict(
            {str(s): nn.Conv2d(w[k], f, 1) for k, s in ((1, 4), (2, 8), (3, 16))}
        )
        used = {*c["rpn_strides"], c["box_stride"], c["mask_stride"], 4}
        self.output_convs = nn.ModuleDict(
            {str(s): nn.Conv2d(f, f, 3, padding=1) for s in sorted(used)}
        )
        self.semantic_head = nn.Sequential(
            _conv(f, c["semantic_channels"], "group"),
            nn.Conv2d(c["semantic_channels"], c["num_classes"], 1),
        )
        n = len(c["anchor_sizes"]) // len(c["rpn_strides"])
        self.rpn = RegionProposalNetwork(
            f,
            [c["anchor_sizes"][i * n : (i + 1) * n] for i in range(len(c["rpn_strides"]))],
            c["aspect_ratios"],
            c["rpn_strides"],
            pre_nms_top_n=tuple(c["rpn_pre_nms_top_n"]),  # type: ignore[arg-type]
            post_nms_top_n=tuple(c["rpn_post_nms_top_n"]),  # type: ignore[arg-type]
            nms_thresh=c["rpn_nms_thresh"],
            batch_size=c["rpn_batch_size"],
            crowd_thresh=c["crowd_thresh"],
        )
        self.roi_heads = RoIHeads(
            f,
            len(c["thing_ids"]),
            c["box_stride"],
            c["mask_stride"],
            box_pool=c["box_pool"],
            mask_pool=c["mask_pool"],
            hidden=c["box_hidden"],
            mask_channels=c["mask_channels"],
            mask_convs=c["mask_convs"],
            batch_size=c["roi_batch_size"],
            positive_fraction=c["roi_positive_fraction"],
            score_thresh=c["score_thresh"],
            nms_thresh=c["nms_thresh"],
            detections_per_image=c["detections_per_image"],
            crowd_thresh=c["crowd_thresh"],
        )
        # class id -> instance label 1..T (0: stuff or void)
        size = max(c["num_classes"], c["ignore_index"] + 1, max(c["thing_ids"], default=0) + 1)
        lut = torch.zeros(size, dtype=torch.long)
        lut[torch.tensor(c["thing_ids"], dtype=torch.long)] = torch.arange(
            1, len(c["thing_ids"]) + 1
        )
        self.register_buffer("thing_label", lut, persistent=False)
        self.register_buffer(
            "thing_class", torch.tensor(c["thing_ids"], dtype=torch.long), persistent=False
        )

    def pyramid(self, image: torch.Tensor) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """(B, C, H, W) -> (pyramid levels {stride: (B, F, ceil(H / s'), ...)} of the image
        padded to multiples of 16, semantic logits (B, num_classes, H, W))."""
        x, (h, w) = pad_to_multiple(image, 16)
        feats = {}
        for k, stage in enumerate(self.stages):
            x = stage(x)
            feats[2 ** (k + 1)] = x
        p = self.lateral["16"](feats[16])
        merged = {16: p}
        for s in (8, 4):
            p = self.lateral[str(s)](feats[s]) + F.interpolate(p, scale_factor=2.0, mode="nearest")
            merged[s] = p
        levels = {int(s): conv(merged[int(s)]) for s, conv in self.output_convs.items()}
        sem = self.semantic_head(levels[4])
        sem = F.interpolate(sem, scale_factor=4.0, mode="bilinear", align_corners=False)
        return levels, sem[..., :h, :w]

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"semantic": self.pyramid(image)[1]}

    def targets(self, semantic: torch.Tensor, instances: torch.Tensor) -> list[Targets]:
        """Maps (B, H, W) -> per image boxes, labels 1..T, masks and the crowd table."""
        out = []
        sem = semantic.long()
        label_maps = self.thing_label[sem.clamp(0, len(self.thing_label) - 1)]
        label_maps[sem == self.conf["ignore_index"]] = 0
        for lab, inst in zip(label_maps, instances.long(), strict=True):
            ids = torch.unique(inst[(inst > 0) & (lab > 0)])
            masks = (inst[None] == ids[:, None, None]) & (lab[None] > 0)
            labels = torch.stack([lab[m].mode().values for m in masks]) if len(ids) else ids
            crowd = (lab > 0) & (inst == 0)
            table = summed_area(crowd) if crowd.any() else None
            out.append(Targets(masks_to_boxes(masks), labels, masks, table))
        return out

    def losses(
        self, image: torch.Tensor, semantic: torch.Tensor, instances: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """{"rpn_cls", "rpn_box", "cls", "box", "mask", "semantic"}, each times its weight."""
        levels, sem = self.pyramid(image)
        size = (image.shape[-2], image.shape[-1])
        targets = self.targets(semantic, instances)
        proposals, losses = self.rpn(
            [levels[s] for s in self.conf["rpn_strides"]],
            size,
            [t.boxes for t in targets],
            [t.crowd for t in targets],
        )
        roi = self.roi_heads(
            levels[self.conf["box_stride"]],
            levels[self.conf["mask_stride"]],
            proposals,
            size,
            targets,
        )
        losses.update(cast(dict[str, torch.Tensor], roi))
        losses["semantic"] = F.cross_entropy(
            sem, semantic.long(), ignore_index=self.conf["ignore_index"]
        )
        weights = self.conf["loss_weights"]
        return {k: losses[k] * weights.get(k, 1.0) for k in LOSSES}

    @torch.no_grad()
    def detect(self, image: torch.Tensor) -> tuple[list[Detections], torch.Tensor]:
        """(B, C, H, W) -> (detections per image, semantic logits (B, num_classes, H, W))."""
        levels, sem = self.pyramid(image)
        size = (image.shape[-2], image.shape[-1])
        proposals, _ = self.rpn([levels[s] for s in self.conf["rpn_strides"]], size)
        dets = self.roi_heads(
            levels[self.conf["box_stride"]], levels[self.conf["mask_stride"]], proposals, size
        )
        return cast(list[Detections], dets), sem

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> list[PanopticOutput]:
        """(B, C, H, W) in [0, 1] -> one `PanopticOutput` per image (call in eval mode)."""
        c = self.conf
        dets, sem = self.detect(image)
        size = (image.shape[-2], image.shape[-1])
        out = []
        for d, logits in zip(dets, sem, strict=True):
            masks = paste_masks(d.masks, d.boxes, size, c["mask_threshold"])
            classes = self.thing_class[d.labels - 1]
            semantic = logits.argmax(0)
            instances = torch.zeros_like(semantic)
            taken = torch.zeros_like(semantic, dtype=torch.bool)
            next_id = 1
            for m, cls, score in zip(masks, classes, d.scores.tolist(), strict=True):
                if score < c["instance_score_thresh"]:
                    break  # by decreasing score
                area = int(m.sum())
                free = m & ~taken
                if area == 0 or int(free.sum()) < c["overlap_thresh"] * area:
                    continue
                instances[free] = next_id
                semantic[free] = cls
                taken |= free
                next_id += 1
            out.append(PanopticOutput(semantic, instances, masks, classes, d.scores.float()))
        return out
