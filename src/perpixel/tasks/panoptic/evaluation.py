"""All the panoptic task's scores at once: IoU and accuracies, iIoU and category scores
(`metrics.instance`), panoptic quality (`metrics.panoptic_quality`) and mask AP
(`metrics.mask_ap`), accumulated image by image and gathered across processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from perpixel.data.formats.cityscapes_labels import AVG_CLASS_SIZE
from perpixel.data.panoptic import void_unassigned
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import ConfigError
from perpixel.metrics.instance import InstanceMetrics
from perpixel.metrics.mask_ap import MaskAP
from perpixel.metrics.panoptic_quality import PanopticQuality
from perpixel.models.panoptic import PanopticOutput

# mask AP's COCO summary (metrics.mask_ap.STAT_NAMES) -> our keys
AP_KEYS = {
    "AP": "ap", "AP50": "ap50", "AP75": "ap75", "APs": "ap_small", "APm": "ap_medium",
    "APl": "ap_large", "AR1": "ar1", "AR10": "ar10", "AR100": "ar100", "ARs": "ar_small",
    "ARm": "ar_medium", "ARl": "ar_large",
}  # fmt: skip


class PanopticEvaluator:
    """`update(prediction, semantic, instances)` per image; `compute()` -> one flat dict.

    Args:
        taxonomy: classes, things, categories, ignore value.
        avg_sizes: iIoU's weight numerators: "data" (each class's mean instance size over
            the evaluated images) or "cityscapes" (cityscapesScripts' fixed table).
        ap: also compute mask AP (keeps every image's matches until `compute`).
    """

    def __init__(self, taxonomy: Taxonomy, avg_sizes: str = "data", ap: bool = True):
        if avg_sizes not in ("data", "cityscapes"):
            raise ConfigError(f"eval.avg_sizes must be 'data' or 'cityscapes', not {avg_sizes!r}")
        t = self.taxonomy = taxonomy
        self.iou = InstanceMetrics.from_taxonomy(
            t, AVG_CLASS_SIZE if avg_sizes == "cityscapes" else None
        )
        self.pq = PanopticQuality(t.names, t.thing_ids, t.ignore_index)
        things = t.thing_ids
        self.ap = MaskAP(things, [t.names[i] for i in things], t.ignore_index) if ap else None

    def update(self, pred: PanopticOutput, semantic: torch.Tensor, instances: torch.Tensor) -> None:
        """One image: `pred` and the (H, W) ground-truth maps of `perpixel.data.panoptic`."""
        t = self.taxonomy
        sem, ins = semantic.cpu(), instances.cpu()
        psem, pins = pred.semantic.cpu(), pred.instances.cpu()
        labels = (psem if pred.labels is None else pred.labels).cpu()
        self.iou.update(labels, sem, ins)
        pvoid = void_unassigned(psem.numpy(), pins.numpy(), t.thing_ids, t.ignore_index)
        self.pq.update(pvoid, pins.numpy(), sem.numpy(), ins.numpy())
        if self.ap is not None:
            self.ap.update_maps(
                sem.numpy(), ins.numpy(), pred.masks.cpu().numpy(), pred.classes.cpu().numpy(),
                pred.scores.cpu().float().numpy(),
            )  # fmt: skip

    def compute(self) -> dict[str, Any]:
        """Flat dict: `metrics_from_confusion`'s keys (miou, pixel_accuracy, per_class_iou,
        ...), iIoU (miiou, per_class_iiou, category_miou, category_miiou, per_category_*),
        PQ (pq, sq, rq, their _things and _stuff, per_class_pq) and with AP the COCO stats
        (ap, ap50, ap75, ap_small, ap_medium, ap_large, ar1, ar10, ar100, ar_small, ...,
        per_class_ap)."""
        out = dict(self.iou.compute())
        pq = self.pq.compute()
        out["per_class_pq"] = pq.pop("per_class")
        out.update(pq)
        if self.ap is not None:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                gathered: list[Any] = [None] * torch.distributed.get_world_size()
                torch.distributed.all_gather_object(gathered, self.ap.images)
                self.ap.images = [img for part in gathered for img in part]
            ap = self.ap.compute()
            ap.pop("precision")
            ap.pop("recall")
            out["per_class_ap"] = ap.pop("per_class")
            out.update({AP_KEYS[k]: v for k, v in ap.items()})
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}
