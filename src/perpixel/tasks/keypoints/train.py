"""Train a keypoint recipe: what `perpixel train` runs for `task: keypoints` (MagicPoint on
synthetic shapes, then MagicPoint or SuperPoint on a folder labelled by homographic
adaptation)."""

from __future__ import annotations

from perpixel.engine.data import RecipeData
from perpixel.engine.trainer import fit, start_run
from perpixel.errors import PerpixelError
from perpixel.tasks.keypoints.datasets import build_dataset, collate
from perpixel.tasks.keypoints.module import KeypointTask

MONITOR = "val/ap"


def keypoints_data(data: dict, seed: int = 0) -> RecipeData:
    """The data module of a keypoint recipe's `data:` section."""
    return RecipeData(data, build_dataset, collate, seed)


def init_from(task: KeypointTask, path: str) -> list[str]:
    """Copy the weights of the keypoint checkpoint `path` whose names and shapes match (a
    MagicPoint starts a SuperPoint: the encoder and detector head); returns the names of the
    layers left as initialised."""
    source = KeypointTask.load(path).model.state_dict()
    target = task.model.state_dict()
    shared = {k: v for k, v in source.items() if k in target and v.shape == target[k].shape}
    if not shared:
        raise PerpixelError(f"{path}: no layer of its model fits this recipe's model")
    task.model.load_state_dict(shared, strict=False)
    return sorted({k.rsplit(".", 1)[0] for k in target if k not in shared})


def train(
    conf: dict, resume: bool = False, recipe: str | None = None, find_lr: bool = False
) -> dict:
    """Train a keypoint recipe (see `defaults.py`); returns {"best", "last", "best_score",
    "monitor", "seconds", "report", ...}. With `resume`, continues from
    out/checkpoints/last.ckpt; `find_lr` runs the learning-rate finder instead."""
    start_run(conf, resume, find_lr)
    data = keypoints_data(conf["data"], conf["seed"])
    task = KeypointTask(conf)
    if not resume and conf["init_from"]:
        fresh = init_from(task, conf["init_from"])
        print(f"started from {conf['init_from']}; new layers: {', '.join(fresh) or 'none'}")
    result = fit(task, data, conf, resume, monitor=MONITOR, recipe=recipe, find_lr=find_lr)
    if find_lr:
        return result
    return {**result, "best_val_ap": result["best_score"], "monitor": MONITOR}
