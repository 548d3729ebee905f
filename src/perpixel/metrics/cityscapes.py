"""Cityscapes' pixel-level benchmark on result files, as `csEvalPixelLevelSemanticLabeling`
scores them: class and category IoU and iIoU of `*labelIds.png` predictions against
`*_gtFine_labelIds.png` and `*_gtFine_instanceIds.png`, over a pool of processes.

The reference's rules, kept exactly (`benchmarks/cityscapes_parity.py` checks them):
predictions are label ids (0..33), not train ids; a predicted id that is not evaluated
(void, or caravan / trailer) is a miss of the ground truth class and never a false positive;
for the category iIoU only, caravan and trailer predictions count as vehicle (the reference
builds its category masks from every label with instances); instances are the ids > 1000 of
`instanceIds` whose class is evaluated; iIoU weights use the reference's average sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np

from perpixel.data.formats.cityscapes_labels import (
    AVG_CLASS_SIZE,
    CITYSCAPES,
    EVALUATED,
    LABELS,
    id_to_train_id,
)
from perpixel.data.png import map_files, read_png
from perpixel.errors import DataError
from perpixel.metrics.confusion import metrics_from_confusion
from perpixel.metrics.instance import InstanceRecords, instance_scores, joint_counts

C = CITYSCAPES.num_classes
VOID = C  # column of predicted ids that are not evaluated
CATEGORY_THINGS = C + 1  # ... and of those that have instances (caravan, trailer)
MAX_ID = max(lb.id for lb in LABELS)


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(256,) label id -> ground-truth train id (`id_to_train_id`, 255 = void); (256,) label
    id -> predicted column (train id, VOID or CATEGORY_THINGS; 255 = not a label id); (C + 2,)
    column -> category, for the instances' category hits; the train id of CATEGORY_THINGS'
    category, whose column takes its counts for the category iIoU's false positives."""
    gt = id_to_train_id()
    ids = [lb.id for lb in LABELS if lb.id >= 0]
    pred = np.full(256, 255, np.uint8)
    pred[ids] = np.where(gt[ids] == 255, VOID, gt[ids])
    ignored_things = [lb for lb in LABELS if lb.train_id == 255 and lb.has_instances]
    categories = {lb.category for lb in ignored_things}
    if len(categories) != 1:
        raise AssertionError("CATEGORY_THINGS stands for exactly one category")
    (category,) = categories
    pred[[lb.id for lb in ignored_things]] = CATEGORY_THINGS
    cat = np.full(C + 2, -1, np.int64)
    cat[:C] = CITYSCAPES.category_lut()
    cat[CATEGORY_THINGS] = list(dict.fromkeys(CITYSCAPES.categories)).index(category)
    as_train_id = next(lb.train_id for lb in EVALUATED if lb.category == category)
    return gt, pred, cat, as_train_id


GT_LUT, PRED_LUT, COLUMN_CATEGORY, CATEGORY_THINGS_AS = _tables()


def find_pairs(pred_dir: str | Path, gt_dir: str | Path) -> list[tuple[Path, Path]]:
    """(prediction, ground-truth labelIds) pairs: every `*_gtFine_labelIds.png` under
    `gt_dir`, with the one PNG under `pred_dir` named `city_sequence_frame*` (the
    reference's rule). DataError when there is none or more than one."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "prediction"), (gt_dir, "ground truth")):
        if not d.is_dir():
            raise DataError(d, f"{what} folder not found")
    gts = sorted(gt_dir.rglob("*_gtFine_labelIds.png"))
    if not gts:
        raise DataError(gt_dir, "no *_gtFine_labelIds.png files under this folder")
    preds: dict[str, list[Path]] = {}
    for p in sorted(pred_dir.rglob("*.png")):
        preds.setdefault("_".join(p.name.split("_")[:3]), []).append(p)
    pairs = []
    for gt in gts:
        key = "_".join(gt.name.split("_")[:3])
        found = preds.get(key, [])
        if len(found) != 1:
            n = "no prediction" if not found else f"{len(found)} predictions"
            raise DataError(pred_dir, f"{n} for {gt.name} (a file named {key}*.png)")
        pairs.append((found[0], gt))
    return pairs


@numba.njit(cache=True, nogil=True)
def _prepare(pred, gt, inst, pred_lut, gt_lut):  # pragma: no cover - numba
    """In place, in one pass (numpy's LUT indexing is 5x slower, and new arrays cost page
    faults): label ids -> predicted columns and train ids; instance ids > 1000 -> 1, 2, ...
    in order of appearance (a small key space for `joint_counts`), others 0."""
    p, g, i = pred.ravel(), gt.ravel(), inst.ravel()
    number = np.zeros(65536, np.int32)
    count = 0
    for k in range(p.size):
        p[k], g[k] = pred_lut[p[k]], gt_lut[g[k]]
        v = i[k]
        if v > 1000:
            if number[v] == 0:
                count += 1
                number[v] = count
            i[k] = number[v]
        else:
            i[k] = 0


def pair_counts(pred_path: Path, gt_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One image -> ((C + 2, C + 2) confusion over predicted columns, (K, 4) instance
    records: class, size, hits, category hits). DataError naming a bad file."""
    inst_path = gt_path.with_name(gt_path.name.replace("_labelIds", "_instanceIds"))
    pred, gt, inst = (read_png(p, what="label map") for p in (pred_path, gt_path, inst_path))
    for arr, path in ((pred, pred_path), (gt, gt_path), (inst, inst_path)):
        if arr.ndim != 2 or arr.shape != gt.shape:
            raise DataError(path, f"label map is {arr.shape}; ground truth is {gt.shape}")
    for arr, path, top in ((pred, pred_path, MAX_ID), (gt, gt_path, MAX_ID),
                           (inst, inst_path, MAX_ID * 1000 + 999)):  # fmt: skip
        if arr.dtype.kind != "u" or int(arr.max(initial=0)) > top:
            raise DataError(path, f"holds {arr.dtype} values up to {int(arr.max())}; expected "
                            f"Cityscapes {'instance' if top > 255 else 'label'} ids")  # fmt: skip
    _prepare(pred, gt, inst, PRED_LUT, GT_LUT)  # -> columns, train ids, instances 1, 2, ..
    cm, rec = joint_counts(pred, gt, inst, C + 2, CITYSCAPES.thing_ids, COLUMN_CATEGORY)
    return cm.numpy(), np.stack([r.numpy() for r in rec], 1)


def _counts(pairs: Sequence[tuple[Path, Path]]) -> tuple[np.ndarray, np.ndarray]:
    cm = np.zeros((C + 2, C + 2), np.int64)
    recs = [np.zeros((0, 4), np.int64)]
    for pred, gt in pairs:
        m, r = pair_counts(pred, gt)
        cm += m
        recs.append(r)
    return cm, np.concatenate(recs)


def scores(cm: np.ndarray, records: np.ndarray) -> dict:
    """The benchmark's numbers from summed counts: `metrics_from_confusion`'s dict (IoU,
    accuracies) plus `instance_scores`' (iIoU, category IoU and iIoU)."""
    import torch

    rec = InstanceRecords(*torch.from_numpy(records).unbind(1))
    rect = cm[:C]  # (C, C + 2): the last two columns are misses
    names, cats = CITYSCAPES.names, CITYSCAPES.category_names
    args = (CITYSCAPES.thing_ids, AVG_CLASS_SIZE, CITYSCAPES.category_lut(), names, cats)
    out = metrics_from_confusion(rect, names) | instance_scores(rect, rec, *args)
    folded = rect.copy()  # caravan / trailer predictions as vehicle false positives
    folded[:, CATEGORY_THINGS_AS] += folded[:, CATEGORY_THINGS]
    folded[:, CATEGORY_THINGS] = 0
    quirk = instance_scores(folded, rec, *args)
    return out | {k: quirk[k] for k in ("per_category_iiou", "category_miiou")}


def evaluate_files(pairs: Sequence[tuple[str | Path, str | Path]], workers: int = 1) -> dict:
    """Cityscapes pixel-level scores of (prediction labelIds, gtFine labelIds) PNG pairs
    (`find_pairs`), decoded and counted in `workers` processes; see `scores`."""
    files = [(Path(p), Path(g)) for p, g in pairs]
    cm, recs = np.zeros((C + 2, C + 2), np.int64), [np.zeros((0, 4), np.int64)]
    for m, r in map_files(_counts, files, workers):
        cm += m
        recs.append(r)
    return scores(cm, np.concatenate(recs))
