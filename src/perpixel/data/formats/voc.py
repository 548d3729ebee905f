"""Pascal VOC 2012 segmentation and the Semantic Boundaries Dataset (SBD).

VOC (`root` = `VOCdevkit/VOC2012` or `VOCdevkit`): `JPEGImages/*.jpg`, `SegmentationClass/*.png`
(palette indices: 0 background, 1..20 the object classes, 255 void border and difficult
objects), `SegmentationObject/*.png` (palette indices: object 1..N, 0 none, 255 void) and
`ImageSets/Segmentation/{train,val,trainval}.txt`.

SBD (`root` = `benchmark_RELEASE` or its `dataset/`): `dataset/img/*.jpg`,
`dataset/cls/*.mat` (struct `GTcls`, field `Segmentation`: class ids 0..20),
`dataset/inst/*.mat` (struct `GTinst`, field `Segmentation`: instance 1..N, 0 none) and
`dataset/{train,val}.txt`. SBD has no void border.

`VOC(root, "train_aug", sbd_root=...)` is the usual augmented training set: SBD train + SBD
val + VOC train, less the VOC val images (10,582 images with the full SBD). An image with VOC
annotations (the VOC train images) is read from VOC (finer, with void borders), the others
from SBD.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perpixel.data.formats.common import Reader, check_classes, check_size, read_label, renumber
from perpixel.data.images import read_image
from perpixel.data.panoptic import PanopticSample
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import DataError

VOC_NAMES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


def voc_colormap(n: int = 256) -> list[tuple[int, int, int]]:
    """VOC's palette: the bits of the class id spread over the high bits of R, G and B."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


PASCAL_VOC = Taxonomy(names=VOC_NAMES, colors=voc_colormap(21), things=VOC_NAMES[1:])


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(path, "split list not found")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _mat_field(path: Path, struct: str, field: str) -> np.ndarray:
    """`struct.field` of a MATLAB file as an integer array, DataError naming the file."""
    if not path.is_file():
        raise DataError(path, "annotation file not found")
    import scipy.io  # here: keeps `import perpixel.data.formats` light

    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
        return np.asarray(getattr(mat[struct], field)).astype(np.int64)
    except (KeyError, AttributeError):
        raise DataError(path, f"no {struct}.{field} in this .mat file") from None
    except (ValueError, OSError, TypeError, NotImplementedError) as e:
        raise DataError(path, f"cannot read .mat file ({e})") from None


def voc_instances(semantic: np.ndarray, objects: np.ndarray, path: Path) -> np.ndarray:
    """Object map (0 none, 1..N, 255 void) -> int32 instances on the object-class pixels.
    DataError naming `path` when an object lies on background/void or spans two classes."""
    obj = np.where((objects > 0) & (objects < 255), objects, 0)
    on = obj > 0
    bad = on & ((semantic == 0) | (semantic == 255))
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise DataError(
            path,
            f"object {int(obj[y, x])} covers background or void pixels of the class map "
            f"(first at row {y}, column {x})",
        )
    pairs = np.unique(np.stack([obj[on], semantic[on]]), axis=1)
    ids, counts = np.unique(pairs[0], return_counts=True)
    if (counts > 1).any():
        k = int(ids[counts > 1][0])
        classes = pairs[1][pairs[0] == k].tolist()
        raise DataError(path, f"object {k} spans classes {classes} of the class map")
    return renumber(obj)


def _sbd_dataset(root: Path) -> Path:
    return root / "dataset" if (root / "dataset").is_dir() else root


def _voc_root(root: Path) -> Path:
    return root / "VOC2012" if (root / "VOC2012").is_dir() else root


class VOC(Reader):
    """VOC 2012 `split` (train, val, trainval; "train_aug" with `sbd_root`) under `root`."""

    taxonomy = PASCAL_VOC

    def __init__(self, root: str | Path, split: str = "train", sbd_root: str | Path | None = None):
        self.root = _voc_root(Path(root))
        sets = self.root / "ImageSets" / "Segmentation"
        self.sbd = None if sbd_root is None else _sbd_dataset(Path(sbd_root))
        if split == "train_aug":
            if self.sbd is None:
                raise DataError(self.root, "split train_aug needs the SBD folder (sbd_root)")
            voc_train = _read_list(sets / "train.txt")
            val = set(_read_list(sets / "val.txt"))
            sbd = _read_list(self.sbd / "train.txt") + _read_list(self.sbd / "val.txt")
            names = sorted(set(sbd + voc_train) - val)
            in_voc = set(voc_train)
            self.sources = ["voc" if n in in_voc else "sbd" for n in names]
        else:
            names = _read_list(sets / f"{split}.txt")
            self.sources = ["voc"] * len(names)
        if not names:
            raise DataError(sets, f"split {split} lists no images")
        self.names = names

    def load(self, i: int) -> PanopticSample:
        name = self.names[i]
        if self.sources[i] == "sbd":
            assert self.sbd is not None
            return load_sbd(self.sbd, name)
        img_path = self.root / "JPEGImages" / f"{name}.jpg"
        cls_path = self.root / "SegmentationClass" / f"{name}.png"
        obj_path = self.root / "SegmentationObject" / f"{name}.png"
        image = read_image(img_path)
        semantic = read_label(cls_path)
        objects = read_label(obj_path)
        check_size(image, semantic, cls_path, img_path)
        check_size(image, objects, obj_path, img_path)
        check_classes(semantic, PASCAL_VOC, cls_path)
        instances = voc_instances(semantic, objects, obj_path)
        return PanopticSample(image, semantic.astype(np.uint8), instances, name)


def load_sbd(dataset: Path, name: str) -> PanopticSample:
    """One SBD sample from the `dataset/` folder."""
    img_path = dataset / "img" / f"{name}.jpg"
    cls_path, inst_path = dataset / "cls" / f"{name}.mat", dataset / "inst" / f"{name}.mat"
    image = read_image(img_path)
    semantic = _mat_field(cls_path, "GTcls", "Segmentation")
    objects = _mat_field(inst_path, "GTinst", "Segmentation")
    check_size(image, semantic, cls_path, img_path)
    check_size(image, objects, inst_path, img_path)
    check_classes(semantic, PASCAL_VOC, cls_path)
    instances = voc_instances(semantic, objects, inst_path)
    return PanopticSample(image, semantic.astype(np.uint8), instances, name)


class SBD(Reader):
    """The Semantic Boundaries Dataset's `split` (train, val) under `root`."""

    taxonomy = PASCAL_VOC

    def __init__(self, root: str | Path, split: str = "train"):
        self.root = _sbd_dataset(Path(root))
        self.names = _read_list(self.root / f"{split}.txt")
        if not self.names:
            raise DataError(self.root / f"{split}.txt", "lists no images")

    def load(self, i: int) -> PanopticSample:
        return load_sbd(self.root, self.names[i])
