"""Train an edge recipe: what `perpixel train` runs for `task: edges`."""

from __future__ import annotations

from perpixel.engine.data import RecipeData
from perpixel.engine.trainer import fit, init_weights, start_run
from perpixel.errors import ConfigError
from perpixel.tasks.edges.datasets import BSDS500, build_dataset, collate
from perpixel.tasks.edges.loss import edge_fraction
from perpixel.tasks.edges.module import EdgeTask

MONITOR = "val/f_approx"


def edges_data(data: dict, seed: int = 0) -> RecipeData:
    """The data module of an edge recipe's `data:` section."""
    return RecipeData(data, build_dataset, collate, seed)


def _init_model(task: EdgeTask, conf: dict) -> None:
    """Start from `init_from` (an edge checkpoint) and/or `init_vgg16` (a torchvision VGG16)."""
    if conf["init_from"]:
        init_weights(task, EdgeTask.load(conf["init_from"]), conf["init_from"])
    if conf["init_vgg16"]:
        from perpixel.models.edges.hed_import import load_torchvision_vgg16

        if conf["model"].get("name") != "hed":
            raise ConfigError("init_vgg16 needs model.name: hed")
        state = load_torchvision_vgg16(conf["init_vgg16"])
        task.model.load_state_dict(state, strict=False)


def train(
    conf: dict, resume: bool = False, recipe: str | None = None, find_lr: bool = False
) -> dict:
    """Train an edge recipe (see `defaults.py`); returns {"best", "last", "best_val_f_approx",
    "beta", "seconds", "report", "is_global_zero"}. With `resume`, continues from
    out/checkpoints/last.ckpt; `recipe` names the recipe in the run's report. `find_lr` runs the learning-rate finder instead (no checkpoints)."""
    start_run(conf, resume, find_lr)
    data = edges_data(conf["data"], conf["seed"])
    train_set, val_set = data.dataset("train"), data.dataset("val")
    for ds in (train_set, val_set):
        if isinstance(ds, BSDS500) and not conf["data"]["cache"]:
            ds.validate()  # fail fast, naming the bad file (a cache has read everything)
    beta = None
    if conf["loss"]["balance"] == "dataset" and conf["loss"]["beta"] is None:
        beta = edge_fraction(train_set)
    task = EdgeTask(conf, beta)
    if not resume:
        _init_model(task, conf)
    result = fit(task, data, conf, resume, monitor=MONITOR, recipe=recipe, find_lr=find_lr)
    if find_lr:
        return result
    return {
        **result,
        "best_val_f_approx": result["best_score"],
        "beta": task.beta,
        "monitor": MONITOR,
    }
