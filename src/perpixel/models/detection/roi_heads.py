"""Mask R-CNN's RoI heads (He et al., ICCV 2017), as in torchvision / Detectron2: proposals
matched to the ground truth (IoU >= 0.5 object), 128 sampled per image (at most a quarter
objects), a two-FC box head with class scores and class-specific box deltas, and an FCN mask
head predicting one M x M mask per class, trained with BCE on the ground-truth class's
channel against the RoIAligned ground-truth mask.

Labels: 0 = background, 1..T = the T object classes (the mask head has T channels). Proposals
that would be background but lie more than `crowd_thresh` inside crowd pixels are left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.detection.boxes import (
    batched_nms,
    box_coverage,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    remove_small_boxes,
)
from perpixel.models.detection.roi_align import roi_align
from perpixel.models.detection.rpn import BELOW_LOW, match, sample_labels


@dataclass
class Targets:
    """One image's ground truth: boxes (G, 4), labels (G,) int64 in 1..T, masks (G, H, W)
    bool, crowd: (H + 1, W + 1) summed-area table of its crowd pixels or None."""

    boxes: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    crowd: torch.Tensor | None = None


@dataclass
class Detections:
    """One image's detections: boxes (N, 4), scores (N,), labels (N,) int64 in 1..T, masks
    (N, M, M) probabilities in the boxes' frames (`paste_masks` puts them in the image)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor


def to_rois(boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image boxes [(N_i, 4)] -> (sum N_i, 5) rows (image index, x1, y1, x2, y2)."""
    idx = [torch.full((len(b), 1), i, dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(idx), torch.cat(list(boxes))], 1)


def paste_masks(
    masks: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Masks (N, M, M) in [0, 1] covering boxes (N, 4) -> (N, H, W) bool image masks: each
    image pixel centre samples its box's mask bilinearly (0 outside the mask), then >=
    `threshold` (Detectron2's paste)."""
    h, w = size
    out = torch.zeros(len(masks), h, w, dtype=torch.bool, device=masks.device)
    for i, (m, (x0, y0, x1, y1)) in enumerate(zip(masks, boxes.tolist(), strict=True)):
        xa, xb = max(math.floor(x0) - 1, 0), min(math.ceil(x1) + 1, w)
        ya, yb = max(math.floor(y0) - 1, 0), min(math.ceil(y1) + 1, h)
        if xb <= xa or yb <= ya or x1 <= x0 or y1 <= y0:
            continue
        xs = (torch.arange(xa, xb, device=m.device, dtype=m.dtype) + 0.5 - x0) / (x1 - x0) * 2 - 1
        ys = (torch.arange(ya, yb, device=m.device, dtype=m.dtype) + 0.5 - y0) / (y1 - y0) * 2 - 1
        grid = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), -1)
        v = F.grid_sample(m[None, None], grid[None], mode="bilinear", align_corners=False)
        out[i, ya:yb, xa:xb] = v[0, 0] >= threshold
    return out


class BoxHead(nn.Module):
    """Two FC layers on pooled RoI features + the class and box predictors:
    (R, C, P, P) -> (class logits (R, T + 1), class-specific deltas (R, T + 1, 4))."""

    def __init__(self, in_channels: int, pool: int, num_classes: int, hidden: int = 256):
        super().__init__()
        self.fc1 = nn.Linear(in_channels * pool * pool, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.cls_score = nn.Linear(hidden, num_classes + 1)
        self.bbox_pred = nn.Linear(hidden, 4 * (num_classes + 1))
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for m in (self.cls_score, self.bbox_pred):
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.cls_score(x), self.bbox_pred(x).reshape(len(x), -1, 4)


class MaskHead(nn.Module):
    """`num_convs` 3x3 conv + ReLU, a 2x2 stride-2 transposed conv + ReLU, a 1x1 conv to one
    mask logit map per class: (R, C, M, M) -> (R, T, 2M, 2M), or with `labels` (R,) in 0..T-1
    only those classes' maps, (R, 2M, 2M).

    The transposed conv runs as a 1x1 conv to 4x the channels + pixel shuffle, and the last
    1x1 conv for the given labels only: the same results, far faster on a CPU.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, num_convs: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1)]
            layers += [nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(channels if num_convs else in_channels, channels, 2, 2)
        self.logits = nn.Conv2d(channels, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.logits.weight, std=0.001)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        w, b, bl = self.deconv.weight, self.deconv.bias, self.logits.bias  # (C_in, C, 2, 2)
        assert b is not None and bl is not None
        w1 = w.permute(1, 2, 3, 0).reshape(4 * w.shape[1], w.shape[0], 1, 1)
        y = F.relu(F.pixel_shuffle(F.conv2d(self.convs(x), w1, b.repeat_interleave(4)), 2))
        if labels is None:
            return self.logits(y)
        wl = self.logits.weight[labels, :, 0, 0]  # (R, C)
        return torch.einsum("rchw,rc->rhw", y, wl) + bl[labels][:, None, None]


class RoIHeads(nn.Module):
    """Box and mask heads on RoIAligned features of one level each.

    Training: forward(box_feats (B, C, h, w), mask_feats (B, C, h', w'), proposals [(P_i,
    4)], image_size, targets [Targets]) -> {"cls", "box", "mask"}. Inference (no targets):
    -> [Detections] per image.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        box_stride: int,
        mask_stride: int,
        box_pool: int = 7,
        mask_pool: int = 14,
        sampling_ratio: int = 2,
        hidden: int = 256,
        mask_channels: int = 256,
        mask_convs: int = 4,
        fg_iou: float = 0.5,
        batch_size: int = 128,
        positive_fraction: float = 0.25,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_image: int = 100,
        crowd_thresh: float = 0.5,
        box_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
    ):
        super().__init__()
        self.num_classes = num_classes
        self.box_scale, self.mask_scale = 1.0 / box_stride, 1.0 / mask_stride
        self.box_pool, self.mask_pool, self.sampling_ratio = box_pool, mask_pool, sampling_ratio
        self.box_head = BoxHead(in_channels, box_pool, num_classes, hidden)
        self.mask_head = MaskHead(in_channels, num_classes, mask_channels, mask_convs)
        self.fg_iou, self.batch_size, self.positive_fraction = fg_iou, batch_size, positive_fraction
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_image, self.crowd_thresh = detections_per_image, crowd_thresh
        self.box_weights = box_weights

    def forward(
        self,
        box_feats: torch.Tensor,
        mask_feats: torch.Tensor,
        proposals: Sequence[torch.Tensor],
        image_size: tuple[int, int],
        targets: Sequence[Targets] | None = None,
    ) -> dict[str, torch.Tensor] | list[Detections]:
        if targets is None:
            return self.detect(box_feats, mask_feats, proposals, image_size)
        return self.losses(box_feats, mask_feats, proposals, targets)

    @torch.no_grad()
    def sample(
        self, proposals: torch.Tensor, t: Targets
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One image's proposals (P, 4) -> the sampled boxes (S, 4) (the ground-truth boxes
        join the proposals), their labels (S,) (0 background) and matched box index (S,)
        (-1 for background)."""
        boxes = torch.cat([proposals, t.boxes.to(proposals)])
        m = match(box_iou(t.boxes.to(proposals), boxes), self.fg_iou, self.fg_iou)
        flag = torch.where(m >= 0, 1, torch.where(m == BELOW_LOW, 0, -1))
        if t.crowd is not None:
            flag[(flag == 0) & (box_coverage(t.crowd, boxes) > self.crowd_thresh)] = -1
        pos, neg = sample_labels(flag, self.batch_size, self.positive_fraction)
        idx = torch.cat([pos, neg])
        matched = torch.cat([m[pos], torch.full_like(neg, -1)])
        labels = torch.zeros_like(matched)
        labels[matched >= 0] = t.labels[matched[matched >= 0]]
        return boxes[idx], labels, matched

    def losses(
        self,
        box_feats: torch.Tensor,
        mask_feats: torch.Tensor,
        proposals: Sequence[torch.Tensor],
        targets: Sequence[Targets],
    ) -> dict[str, torch.Tensor]:
        """Cross-entropy over the sampled RoIs, smooth L1 (beta 1/9) on the deltas of the
        positives' own class (summed, / sampled RoIs), mask BCE (mean) over the positives."""
        boxes, labels, matched = zip(
            *(self.sample(p, t) for p, t in zip(proposals, targets, strict=True)), strict=True
        )
        rois = to_rois(boxes)
        feats = roi_align(box_feats, rois, self.box_pool, self.box_scale, self.sampling_ratio)
        logits, deltas = self.box_head(feats)
        label = torch.cat(labels)
        cls = F.cross_entropy(logits, label)
        pos = torch.nonzero(label > 0).flatten()
        gt = torch.cat([t.boxes[m[m >= 0]] for t, m in zip(targets, matched, strict=True)])
        want = encode_boxes(gt.to(rois), rois[pos, 1:], self.box_weights)
        box = F.smooth_l1_loss(deltas[pos, label[pos]], want, beta=1 / 9, reduction="sum")
        box = box / max(len(label), 1)
        if pos.numel() == 0:
            mask = torch.stack([p.sum() for p in self.mask_head.parameters()]).sum() * 0.0
            return {"cls": cls, "box": box, "mask": mask}
        size = 2 * self.mask_pool
        mask_targets = []
        for t, b, m in zip(targets, boxes, matched, strict=True):
            keep = m >= 0
            if keep.any():
                rows = torch.cat([m[keep, None].to(b), b[keep]], 1)
                gt_masks = t.masks[:, None].to(b)
                mask_targets.append(roi_align(gt_masks, rows, size, 1.0, 0)[:, 0] >= 0.5)
        pred = self.mask_head(
            roi_align(mask_feats, rois[pos], self.mask_pool, self.mask_scale, self.sampling_ratio),
            label[pos] - 1,
        )
        mask = F.binary_cross_entropy_with_logits(pred, torch.cat(mask_targets).to(pred))
        return {"cls": cls, "box": box, "mask": mask}

    @torch.no_grad()
    def detect(
        self,
        box_feats: torch.Tensor,
        mask_feats: torch.Tensor,
        proposals: Sequence[torch.Tensor],
        image_size: tuple[int, int],
    ) -> list[Detections]:
        """Per class: decoded, clipped boxes with score > `score_thresh`, NMS within each class,
        the best `detections_per_image`; their masks' probabilities for their class."""
        rois = to_rois(proposals)
        logits, deltas = self.box_head(
            roi_align(box_feats, rois, self.box_pool, self.box_scale, self.sampling_ratio)
        )
        scores = logits.float().softmax(-1)[:, 1:]  # (R, T)
        boxes = clip_boxes(
            decode_boxes(deltas[:, 1:].float(), rois[:, None, 1:], self.box_weights), image_size
        )
        out = []
        start = 0
        t = self.num_classes
        for props in proposals:
            n = len(props)
            s = scores[start : start + n].reshape(-1)
            b = boxes[start : start + n].reshape(-1, 4)
            lab = torch.arange(1, t + 1, device=s.device).repeat(n)
            start += n
            keep = torch.nonzero(s > self.score_thresh).flatten()
            keep = keep[remove_small_boxes(b[keep], 1e-2)]
            b, s, lab = b[keep], s[keep], lab[keep]
            keep = batched_nms(b, s, lab, self.nms_thresh, self.detections_per_image)
            out.append(Detections(b[keep], s[keep], lab[keep], torch.zeros(0)))
        det_rois = to_rois([d.boxes for d in out])
        m = self.mask_pool * 2
        if len(det_rois):
            feats = roi_align(
                mask_feats, det_rois, self.mask_pool, self.mask_scale, self.sampling_ratio
            )
            labels = torch.cat([d.labels for d in out])
            probs = self.mask_head(feats, labels - 1).float().sigmoid()
        else:
            probs = mask_feats.new_zeros(0, m, m)
        start = 0
        for d in out:
            d.masks = probs[start : start + len(d.boxes)]
            start += len(d.boxes)
        return out
