"""Instance and panoptic segmentation: things and stuff, a bottom-up model (Panoptic-DeepLab
style: semantic, centre and offset heads, grouping) and a top-down one (Mask R-CNN); scored
with PQ, mask AP, IoU, iIoU and category scores."""

from __future__ import annotations

from perpixel.engine.task import Task
from perpixel.tasks.panoptic.cli import evaluate_command
from perpixel.tasks.panoptic.defaults import DEFAULTS
from perpixel.tasks.panoptic.module import PanopticTask
from perpixel.tasks.panoptic.predict import Panoptor
from perpixel.tasks.panoptic.tools import add_commands
from perpixel.tasks.panoptic.train import evaluate, train

TASK = Task(
    name="panoptic",
    summary="instance and panoptic segmentation: a class and an instance id for every pixel",
    defaults=DEFAULTS,
    module=PanopticTask,
    output="panoptic",
    train=train,
    evaluate=evaluate_command,
    predictor=lambda task, device: Panoptor(task, device),
    add_commands=add_commands,
)

__all__ = ["TASK", "PanopticTask", "Panoptor", "evaluate", "train"]
