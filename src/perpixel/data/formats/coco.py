"""COCO instances and COCO panoptic.

Instances: `root/annotations/instances_{split}.json` and images in `root/{split}/`. Classes are
"background" (0) and the JSON's categories in their listed order (1..K, all things);
`category_ids[c]` is class c's COCO id (0 for background). Segmentations (polygons,
uncompressed or compressed RLE) are rasterised as pycocotools does (`formats.rle`). Each
non-crowd annotation is one instance; pixels covered by two or more of them are void (255,
as torchvision's segmentation reference); crowd regions (`iscrowd`) give their class with
instance 0 where no non-crowd annotation covers them; the rest is background.

Panoptic: `root/annotations/panoptic_{split}.json`, the PNGs in `root/panoptic_{split}/` (or
`root/annotations/panoptic_{split}/`, as the archive unpacks) and images in `root/{split}/`.
Classes are the JSON's categories in their listed order (0..K-1), things those with
`isthing`; segment id 0 (unannotated) is void. Non-crowd thing segments become instances
1..N in segment-id order; stuff and crowd segments carry instance 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from perpixel.data.formats import rle
from perpixel.data.formats.common import Reader, check_size, renumber
from perpixel.data.images import read_image
from perpixel.data.panoptic import PanopticSample, Segment, from_segments, read_panoptic_png
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import DataError


def load_json(path: Path) -> dict[str, Any]:
    """A COCO annotation file, DataError naming it when missing or malformed."""
    if not path.is_file():
        raise DataError(path, "annotation file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON ({e})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(path, f"no '{key}' list")
    return data


def annotation_mask(segm: Any, h: int, w: int) -> np.ndarray:
    """A COCO `segmentation` (polygons or RLE) -> (h, w) bool; ValueError if malformed."""
    if isinstance(segm, list):
        return rle.polygons_to_mask(segm, h, w)
    if isinstance(segm, dict):
        if [int(v) for v in segm.get("size", [])] != [h, w]:
            raise ValueError(f"RLE size {segm.get('size')} is not the image's [{h}, {w}]")
        return rle.decode(segm)
    raise ValueError(f"segmentation is a {type(segm).__name__}, not polygons or an RLE")


def _check_image(image: np.ndarray, info: dict, path: Path, source: Path) -> None:
    h, w = info.get("height"), info.get("width")
    if (h, w) != image.shape[:2] and h is not None:
        raise DataError(
            path, f"image is {image.shape[1]}x{image.shape[0]} but {source.name} says {w}x{h}"
        )


class COCOInstances(Reader):
    """COCO instance annotations of `split` (e.g. val2017) under `root`.

    Args:
        skip_empty: leave out images without annotations.
    """

    def __init__(self, root: str | Path, split: str = "val2017", skip_empty: bool = False):
        self.root = Path(root)
        self.json = self.root / "annotations" / f"instances_{split}.json"
        self.image_dir = self.root / split
        data = load_json(self.json)
        cats = data["categories"]
        names = ["background"] + [str(c["name"]) for c in cats]
        try:
            self.taxonomy = Taxonomy(names=names, things=names[1:])
        except ValueError as e:  # past 255 classes, or a name given twice
            raise DataError(self.json, f"categories: {e}") from None
        self.category_ids = [0] + [int(c["id"]) for c in cats]
        self.class_of = {cid: k for k, cid in enumerate(self.category_ids) if k}
        self.anns: dict[int, list[dict]] = {}
        for a in data["annotations"]:
            self.anns.setdefault(int(a["image_id"]), []).append(a)
        self.images = [im for im in data["images"] if not skip_empty or int(im["id"]) in self.anns]
        self.names = [Path(im["file_name"]).stem for im in self.images]

    def load(self, i: int) -> PanopticSample:
        info = self.images[i]
        path = self.image_dir / info["file_name"]
        image = read_image(path)
        _check_image(image, info, path, self.json)
        h, w = image.shape[:2]
        semantic = np.zeros((h, w), np.uint8)
        instances = np.zeros((h, w), np.int32)
        covered = np.zeros((h, w), np.int32)
        crowd = np.zeros((h, w), np.uint8)  # class of the crowd region, 0 = none
        k = 0
        for a in self.anns.get(int(info["id"]), []):
            cls = self.class_of.get(int(a["category_id"]))
            if cls is None:
                raise DataError(
                    self.json, f"annotation {a.get('id')}: unknown category {a['category_id']}"
                )
            try:
                m = annotation_mask(a["segmentation"], h, w)
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(self.json, f"annotation {a.get('id')}: {e}") from None
            if a.get("iscrowd"):
                crowd[m] = cls
                continue
            k += 1
            semantic[m] = cls
            instances[m] = k
            covered += m
        free = covered == 0
        semantic[free] = crowd[free]
        semantic[covered > 1] = self.taxonomy.ignore_index
        instances[covered > 1] = 0
        return PanopticSample(image, semantic, renumber(instances), self.names[i])


class COCOPanoptic(Reader):
    """COCO panoptic annotations of `split` (e.g. val2017) under `root`."""

    def __init__(self, root: str | Path, split: str = "val2017"):
        self.root = Path(root)
        self.json = self.root / "annotations" / f"panoptic_{split}.json"
        self.image_dir = self.root / split
        data = load_json(self.json)
        cats = data["categories"]
        names = [str(c["name"]) for c in cats]
        colors = [tuple(c["color"]) for c in cats] if all("color" in c for c in cats) else []
        try:
            self.taxonomy = Taxonomy(
                names=names,
                colors=colors,
                things=[n for n, c in zip(names, cats, strict=True) if c.get("isthing")],
            )
        except ValueError as e:
            raise DataError(self.json, f"categories: {e}") from None
        self.category_ids = [int(c["id"]) for c in cats]
        self.class_of = {cid: k for k, cid in enumerate(self.category_ids)}
        self.png_dir = self.root / f"panoptic_{split}"
        if not self.png_dir.is_dir():
            self.png_dir = self.root / "annotations" / f"panoptic_{split}"
        self.image_info = {int(im["id"]): im for im in data["images"]}
        self.anns = data["annotations"]
        for a in self.anns:
            png = self.png_dir / a["file_name"]
            if not png.is_file():
                raise DataError(self.json, f"names the segment PNG {png}, which does not exist")
            if int(a["image_id"]) not in self.image_info:
                raise DataError(self.json, f"annotation {a['file_name']}: no image {a['image_id']}")
        self.names = [Path(a["file_name"]).stem for a in self.anns]

    def load(self, i: int) -> PanopticSample:
        a = self.anns[i]
        info = self.image_info[int(a["image_id"])]
        img_path, png = self.image_dir / info["file_name"], self.png_dir / a["file_name"]
        image = read_image(img_path)
        _check_image(image, info, img_path, self.json)
        ids = read_panoptic_png(png)
        check_size(image, ids, png, img_path)
        segments: dict[int, Segment] = {}
        for s in a.get("segments_info", []):
            cls = self.class_of.get(int(s["category_id"]))
            if cls is None:
                raise DataError(
                    self.json,
                    f"{a['file_name']}: segment {s['id']} has unknown category {s['category_id']}",
                )
            segments[int(s["id"])] = Segment(cls, bool(s.get("iscrowd", 0)))
        present = np.unique(ids)
        missing = [int(v) for v in present if v and int(v) not in segments]
        if missing:
            raise DataError(
                png, f"segment ids {missing[:5]} are not in the segments_info of {self.json.name}"
            )
        t = self.taxonomy
        semantic, instances = from_segments(ids, segments, t.ignore_index, t.thing_ids)
        return PanopticSample(image, semantic, instances, self.names[i])
