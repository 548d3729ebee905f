"""The tasks, one package each; adding a task is a package with a `TASK` plus a line here.

`load_recipe` reads a recipe against its task's defaults, `open_checkpoint` rebuilds any
task's checkpoint (or a built-in such as "hed"), `load` gives its predictor.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from perpixel.config import (
    BadValue,
    UnknownKey,
    check_values,
    merge,
    parse_overrides,
    read_recipe,
    resolve_recipe,
)
from perpixel.engine.checkpoint import checkpoint_task, read_checkpoint
from perpixel.engine.module import TaskModule
from perpixel.engine.predictor import Predictor
from perpixel.engine.task import Task
from perpixel.errors import ConfigError, PerpixelError

TASKS: dict[str, str] = {
    "segmentation": "perpixel.tasks.segmentation",
    "edges": "perpixel.tasks.edges",
    "keypoints": "perpixel.tasks.keypoints",
    "panoptic": "perpixel.tasks.panoptic",
}


def get_task(name: str) -> Task:
    """The `Task` registered as `name`."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; tasks: {sorted(TASKS)}")
    return importlib.import_module(TASKS[name]).TASK


def _owner(path: tuple[str, ...], task: str) -> str | None:
    """Another task whose defaults have the key at `path`."""
    for other in TASKS:
        if other == task:
            continue
        node = get_task(other).defaults
        for key in path:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return other
    return None


def load_recipe(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> dict:
    """A full recipe: its task's defaults <- the YAML file (and its `base:` chain) <-
    overrides (dotted `key=value` strings or a nested dict). The task is the recipe's
    `task:` (default: segmentation); keys, the type of each value (`check_values`) and the
    model are checked against that task, so a bad recipe fails here, before any run starts.
    Number strings such as '1e-3' (YAML 1.1 reads them so) become floats."""
    from perpixel.models import MODELS, check_model_conf

    raw = read_recipe(resolve_recipe(path)) if path is not None else {}
    over = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    name = over.get("task") or raw.get("task") or "segmentation"
    task = get_task(name)
    try:
        conf = merge(merge(task.defaults, raw), over)
    except UnknownKey as e:
        owner = _owner(e.path, name)
        if owner is None:
            raise
        where = f"{path}: " if path is not None else ""
        raise ConfigError(
            f"{where}{e} -- {'.'.join(e.path)} is a key of {owner} recipes; "
            f"start the recipe with `task: {owner}` (this one is read as `task: {name}`)"
        ) from None
    try:
        check_values(conf, task.defaults)
    except BadValue as e:
        raise ConfigError(f"{_source(path, over, e.path)}: {e}") from None
    try:
        check_model_conf(conf["model"], task.output, name)
    except ConfigError as e:
        owners = [t for t in TASKS if t != name and _accepts(t, conf["model"].get("name"))]
        hint = f"; it is a model of {owners[0]} recipes (`task: {owners[0]}`)" if owners else ""
        raise ConfigError(f"{path or 'recipe'}: {e}{hint}") from None
    try:  # the model's options, against its own defaults
        check_values(
            conf["model"], MODELS[conf["model"].get("name", "unet")].default_conf, ("model",)
        )
    except BadValue as e:
        raise ConfigError(f"{_source(path, over, e.path)}: {e}") from None
    return conf


def _source(path: str | Path | None, overrides: dict, key: tuple[str, ...]) -> str:
    """What set the value at `key`: the recipe file, or "recipe" (an override, a default)."""
    node = overrides
    for k in key:
        if not isinstance(node, dict) or k not in node:
            return str(path) if path is not None else "recipe"
        node = node[k]
    return "recipe"


def _accepts(task: str, model: str | None) -> bool:
    from perpixel.models import OUTPUTS

    return OUTPUTS.get(model or "") == get_task(task).output


def builtin_task(name: str) -> Task | None:
    """The task with a built-in predictor called `name` ("hed", "canny", ...), if any."""
    for t in TASKS:
        if name in get_task(t).builtins:
            return get_task(t)
    return None


def open_checkpoint(
    checkpoint: str | Path, map_location: str = "cpu"
) -> tuple[Task, TaskModule | Predictor]:
    """(task, module in eval mode) of any task's checkpoint, read as plain data; a built-in
    name ("hed", "canny", "sobel") that is not a file gives its module or predictor."""
    if not Path(checkpoint).exists():
        task = builtin_task(str(checkpoint))
        if task is not None:
            return task, task.builtins[str(checkpoint)]()
    ckpt = read_checkpoint(checkpoint, map_location)
    name = checkpoint_task(ckpt)
    if name not in TASKS:
        raise PerpixelError(f"{checkpoint}: a checkpoint of task {name!r}, unknown here")
    task = get_task(name)
    return task, task.module.from_checkpoint(ckpt, checkpoint)


def load(checkpoint: str | Path, device: str = "cpu") -> Predictor:
    """The predictor of any task's checkpoint (or built-in name): `.predict(image)`."""
    task, target = open_checkpoint(checkpoint)
    return task.predictor(target, device)


__all__ = ["TASKS", "get_task", "load", "load_recipe", "open_checkpoint"]
