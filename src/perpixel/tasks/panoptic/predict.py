"""Panoptic inference: `perpixel.load(checkpoint).predict(image)` and `perpixel predict`.

For each image `perpixel predict` writes, in OUT:
- `NAME_panoptic.png`: the panoptic picture (stuff in class colours, instances in shades of
  theirs, outlined) over the image, with a legend;
- `NAME_labelIds.png`: class ids (uint8);
- `NAME_instanceIds.png`: Cityscapes' encoding, 16-bit: class * 1000 + k for thing instance k,
  the class id alone elsewhere (class ids are the checkpoint's, e.g. train ids for Cityscapes);
- `panoptic/NAME.png` and, for the folder, `panoptic.json`: the COCO panoptic format (segment
  ids as R + 256 G + 256^2 B, `segments_info` with category_id = class id, `categories`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perpixel.data.panoptic import LABEL_DIVISOR, id_to_rgb, to_segments, void_unassigned
from perpixel.engine.predictor import ImageLike, Predictor, to_tensor
from perpixel.io import write_json, write_png
from perpixel.models.panoptic import PanopticOutput
from perpixel.tasks.panoptic.module import PanopticTask
from perpixel.viz.legend import with_legend
from perpixel.viz.panoptic import panoptic_panel


class Panoptor(Predictor):
    """Panoptic predictions of a `PanopticTask`: `predict(image) -> PanopticOutput`."""

    uint8_images = True  # `write` draws on the (H, W, 3) uint8 image
    outputs = (
        "NAME_panoptic.png, NAME_labelIds.png, NAME_instanceIds.png, panoptic/ + panoptic.json"
    )

    def __init__(self, task: PanopticTask, device: str = "cpu", alpha: float = 0.6):
        self.task = task.to(device).eval()
        self.device, self.alpha = device, alpha
        self.taxonomy = task.taxonomy
        self.annotations: list[dict] = []

    @torch.no_grad()
    def predict(self, image: ImageLike) -> PanopticOutput:
        """An image (path, PIL, (H, W, 3) uint8 or (3, H, W) float) -> its `PanopticOutput`
        (semantic, instances, scored instance masks), on the CPU."""
        x = to_tensor(image).to(self.device)[None]
        p = self.task.predict(x)[0]
        labels = None if p.labels is None else p.labels.cpu()
        s, i, m, c, sc = (t.cpu() for t in (p.semantic, p.instances, p.masks, p.classes, p.scores))
        return PanopticOutput(s, i, m, c, sc, labels)

    def write(self, out_dir: Path, item: dict, prediction: PanopticOutput) -> Path:
        tax = self.taxonomy
        semantic = prediction.semantic.numpy().astype(np.int64)
        instances = prediction.instances.numpy().astype(np.int64)
        rgb = item["image"]  # (H, W, 3) uint8 (`uint8_images`)
        name = item["name"]
        panel = panoptic_panel(semantic, instances, tax).astype(np.float32)
        mixed = ((1 - self.alpha) * rgb + self.alpha * panel).round().astype(np.uint8)
        ids = np.unique(semantic[semantic != tax.ignore_index])
        main = write_png(out_dir / f"{name}_panoptic.png", with_legend(mixed, ids, tax))
        write_png(out_dir / f"{name}_labelIds.png", semantic.astype(np.uint8))
        encoded = np.where(instances > 0, semantic * LABEL_DIVISOR + instances, semantic)
        write_png(out_dir / f"{name}_instanceIds.png", encoded.astype(np.uint16))
        void = void_unassigned(semantic, instances, tax.thing_ids, tax.ignore_index)
        seg_ids, segments = to_segments(void, instances, tax.thing_ids, tax.ignore_index)
        write_png(out_dir / "panoptic" / f"{name}.png", id_to_rgb(seg_ids))
        area = np.bincount(seg_ids.ravel(), minlength=len(segments) + 1)
        self.annotations.append(
            {
                "image_id": name,
                "file_name": f"{name}.png",
                "segments_info": [
                    {
                        "id": i,
                        "category_id": s.category,
                        "iscrowd": int(s.iscrowd),
                        "area": int(area[i]),
                    }
                    for i, s in segments.items()
                ],
            }
        )
        return main

    def predict_folder(self, images, out_dir, progress: bool = True) -> list[Path]:
        """Predict every image into `out_dir`, then write `panoptic.json` for them all."""
        self.annotations = []
        written = super().predict_folder(images, out_dir, progress)
        tax = self.taxonomy
        categories = [
            {"id": i, "name": n, "isthing": int(n in tax.things), "color": list(tax.colors[i])}
            for i, n in enumerate(tax.names)
        ]
        write_json(
            Path(out_dir) / "panoptic.json",
            {"annotations": self.annotations, "categories": categories},
        )
        return written
