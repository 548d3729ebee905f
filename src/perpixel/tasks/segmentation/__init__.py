"""Semantic segmentation: a class for every pixel (U-Net, the per-pixel linear classifier),
cross-entropy / Dice losses, confusion-matrix metrics (mIoU, ...), reports."""

from __future__ import annotations

from perpixel.engine.task import Task
from perpixel.tasks.segmentation.cli import add_commands, evaluate_command
from perpixel.tasks.segmentation.defaults import DEFAULTS
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.tasks.segmentation.predict import Segmenter
from perpixel.tasks.segmentation.train import train

TASK = Task(
    name="segmentation",
    summary="semantic segmentation: a class id for every pixel",
    defaults=DEFAULTS,
    module=SegmentationTask,
    output="logits",
    train=train,
    evaluate=evaluate_command,
    predictor=lambda task, device: Segmenter(task, device),
    add_commands=add_commands,
)

__all__ = ["TASK", "SegmentationTask", "Segmenter", "train"]
