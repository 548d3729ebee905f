"""The region proposal network (Ren et al., "Faster R-CNN", NeurIPS 2015), as in torchvision /
Detectron2: a shared conv head over one or more feature levels, anchors matched to the
ground truth by IoU (>= 0.7 object, < 0.3 background, each box's best anchors objects too),
256 anchors sampled per image (at most half objects), BCE on objectness + smooth L1 on the
box deltas; proposals: top-k per level, decoded, clipped, NMS per level, top-k per image.

Crowd regions (pixels of thing classes that no instance claims) come as a per-image summed
area table (`boxes.summed_area`): an anchor that would be background but lies more than
`crowd_thresh` inside crowd pixels is ignored instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.detection.anchors import AnchorGenerator
from perpixel.models.detection.boxes import (
    batched_nms,
    box_coverage,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    remove_small_boxes,
)

BELOW_LOW = -1  # `match`: best IoU below the low threshold (background)
BETWEEN = -2  # `match`: best IoU in [low, high) (ignored)


def match(
    iou: torch.Tensor, high: float, low: float, allow_low_quality: bool = False
) -> torch.Tensor:
    """Assign each of N predictions (anchors, proposals) to its best of G boxes.

    iou: (G, N). Returns (N,) int64: the index of the best box where its IoU >= `high`,
    `BELOW_LOW` below `low`, `BETWEEN` otherwise. `allow_low_quality`: every box also claims
    the predictions whose IoU with it is its maximum (ties included, IoU > 0), whatever their
    value (each of those keeps its own best box).
    """
    n = iou.shape[1]
    if iou.shape[0] == 0:
        return torch.full((n,), BELOW_LOW, dtype=torch.long, device=iou.device)
    best, idx = iou.max(0)
    out = idx.clone()
    out[best < low] = BELOW_LOW
    out[(best >= low) & (best < high)] = BETWEEN
    if allow_low_quality:
        per_box = iou.max(1, keepdim=True).values
        claimed = ((iou == per_box) & (per_box > 0)).any(0)
        out[claimed] = idx[claimed]
    return out


def sample_labels(
    labels: torch.Tensor,
    num: int,
    positive_fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random balanced sample of labels (N,) (1 positive, 0 negative, -1 ignored): at most
    num * positive_fraction positives, negatives fill up to `num` -> (positive indices,
    negative indices), int64."""
    pos = torch.nonzero(labels == 1).flatten()
    neg = torch.nonzero(labels == 0).flatten()
    n_pos = min(pos.numel(), int(num * positive_fraction))
    n_neg = min(neg.numel(), num - n_pos)
    dev = labels.device
    pos = pos[torch.randperm(pos.numel(), generator=generator, device=dev)[:n_pos]]
    neg = neg[torch.randperm(neg.numel(), generator=generator, device=dev)[:n_neg]]
    return pos, neg


class RPNHead(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs to A objectness logits and 4A box deltas per cell.

    forward([(B, C, h_l, w_l)]) -> ([(B, h_l w_l A)], [(B, h_l w_l A, 4)]), anchor order
    (y, x, a) as `anchors.anchor_grid`.
    """

    def __init__(self, in_channels: int, num_anchors: int, channels: int | None = None):
        super().__init__()
        channels = channels or in_channels
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.objectness = nn.Conv2d(channels, num_anchors, 1)
        self.deltas = nn.Conv2d(channels, 4 * num_anchors, 1)
        for m in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(
        self, features: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, deltas = [], []
        for f in features:
            t = F.relu(self.conv(f))
            b, _, h, w = t.shape
            logits.append(self.objectness(t).permute(0, 2, 3, 1).reshape(b, -1))
            d = self.deltas(t).reshape(b, -1, 4, h, w).permute(0, 3, 4, 1, 2)
            deltas.append(d.reshape(b, -1, 4))
        return logits, deltas


class RegionProposalNetwork(nn.Module):
    """Anchors + `RPNHead` + proposal selection + training losses.

    forward(features [(B, C, h_l, w_l)], image_size (H, W), gt_boxes [(G_i, 4)] or None,
    crowd [(H + 1, W + 1) summed-area tables] or None) -> (proposals [(P_i, 4)] per image,
    losses {"rpn_cls", "rpn_box"}, empty without `gt_boxes`). `pre_nms_top_n` (per level)
    and `post_nms_top_n` (per image) are (training, inference) pairs.
    """

    def __init__(
        self,
        in_channels: int,
        anchor_sizes: Sequence[Sequence[float]],
        aspect_ratios: Sequence[float],
        strides: Sequence[int],
        pre_nms_top_n: tuple[int, int] = (2000, 1000),
        post_nms_top_n: tuple[int, int] = (2000, 1000),
        nms_thresh: float = 0.7,
        fg_iou: float = 0.7,
        bg_iou: float = 0.3,
        batch_size: int = 256,
        positive_fraction: float = 0.5,
        min_size: float = 1e-3,
        crowd_thresh: float = 0.5,
    ):
        super().__init__()
        self.anchors = AnchorGenerator(anchor_sizes, aspect_ratios, strides)
        if len(set(self.anchors.num_anchors)) != 1:
            raise ValueError("RPN: every level needs the same number of anchors per cell")
        self.head = RPNHead(in_channels, self.anchors.num_anchors[0])
        self.pre_nms_top_n, self.post_nms_top_n = pre_nms_top_n, post_nms_top_n
        self.nms_thresh, self.fg_iou, self.bg_iou = nms_thresh, fg_iou, bg_iou
        self.batch_size, self.positive_fraction = batch_size, positive_fraction
        self.min_size, self.crowd_thresh = min_size, crowd_thresh

    def forward(
        self,
        features: Sequence[torch.Tensor],
        image_size: tuple[int, int],
        gt_boxes: Sequence[torch.Tensor] | None = None,
        crowd: Sequence[torch.Tensor | None] | None = None,
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        logits, deltas = self.head(features)
        anchors = self.anchors([tuple(f.shape[-2:]) for f in features], features[0].device)
        proposals = self.select(logits, deltas, anchors, image_size)
        losses: dict[str, torch.Tensor] = {}
        if gt_boxes is not None:
            labels, targets = self.assign(torch.cat(anchors), gt_boxes, crowd)
            losses = self.loss(torch.cat(logits, 1), torch.cat(deltas, 1), labels, targets)
        return proposals, losses

    @torch.no_grad()
    def select(
        self,
        logits: list[torch.Tensor],
        deltas: list[torch.Tensor],
        anchors: list[torch.Tensor],
        image_size: tuple[int, int],
    ) -> list[torch.Tensor]:
        """Top `pre_nms_top_n` per level, decoded, clipped, small boxes dropped, NMS within
        each level, the best `post_nms_top_n` -> [(P_i, 4)] per image, by decreasing score."""
        pre = self.pre_nms_top_n[0 if self.training else 1]
        post = self.post_nms_top_n[0 if self.training else 1]
        boxes, scores, levels = [], [], []
        for lvl, (lg, dl, an) in enumerate(zip(logits, deltas, anchors, strict=True)):
            k = min(pre, lg.shape[1])
            top, idx = lg.detach().float().topk(k, dim=1)  # (B, k)
            d = torch.gather(dl.detach().float(), 1, idx[..., None].expand(-1, -1, 4))
            boxes.append(decode_boxes(d, an[idx], (1.0, 1.0, 1.0, 1.0)))
            scores.append(top)
            levels.append(torch.full_like(idx, lvl))
        out = []
        for b, s, lv in zip(
            torch.cat(boxes, 1), torch.cat(scores, 1), torch.cat(levels, 1), strict=True
        ):
            b = clip_boxes(b, image_size)
            keep = remove_small_boxes(b, self.min_size)
            b, s, lv = b[keep], s[keep], lv[keep]
            keep = batched_nms(b, s, lv, self.nms_thresh, post)
            out.append(b[keep[:post]])
        return out

    @torch.no_grad()
    def assign(
        self,
        anchors: torch.Tensor,
        gt_boxes: Sequence[torch.Tensor],
        crowd: Sequence[torch.Tensor | None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchors (N, 4) -> labels (B, N) (1 object, 0 background, -1 ignored) and box
        targets (B, N, 4) (deltas to the matched box, 0 where unmatched)."""
        labels, targets = [], []
        for i, gt in enumerate(gt_boxes):
            m = match(box_iou(gt, anchors), self.fg_iou, self.bg_iou, allow_low_quality=True)
            lab = torch.full_like(m, -1)
            lab[m >= 0] = 1
            lab[m == BELOW_LOW] = 0
            table = crowd[i] if crowd is not None else None
            if table is not None:
                inside = box_coverage(table, anchors) > self.crowd_thresh
                lab[(lab == 0) & inside] = -1
            t = torch.zeros_like(anchors)
            if gt.shape[0] > 0:
                pos = m >= 0
                t[pos] = encode_boxes(gt[m[pos]], anchors[pos], (1.0, 1.0, 1.0, 1.0))
            labels.append(lab)
            targets.append(t)
        return torch.stack(labels), torch.stack(targets)

    def loss(
        self,
        logits: torch.Tensor,
        deltas: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """logits (B, N), deltas (B, N, 4), labels (B, N), targets (B, N, 4) -> BCE over the
        sampled anchors (mean) and smooth L1 (beta 1/9) over their positives / sampled."""
        pos, neg = [], []
        n = labels.shape[1]
        for i, lab in enumerate(labels):
            p, q = sample_labels(lab, self.batch_size, self.positive_fraction)
            pos.append(p + i * n)
            neg.append(q + i * n)
        pos_i, neg_i = torch.cat(pos), torch.cat(neg)
        sampled = torch.cat([pos_i, neg_i])
        if sampled.numel() == 0:  # nothing to learn from (every anchor ignored)
            zero = logits.sum() * 0 + deltas.sum() * 0
            return {"rpn_cls": zero, "rpn_box": zero}
        flat_logits = logits.reshape(-1)
        target = torch.cat([torch.ones_like(pos_i), torch.zeros_like(neg_i)]).to(logits.dtype)
        cls = F.binary_cross_entropy_with_logits(flat_logits[sampled], target)
        box = (
            F.smooth_l1_loss(
                deltas.reshape(-1, 4)[pos_i],
                targets.reshape(-1, 4)[pos_i],
                beta=1 / 9,
                reduction="sum",
            )
            / sampled.numel()
        )
        return {"rpn_cls": cls, "rpn_box": box}
