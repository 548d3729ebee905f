"""Edge detection: HED and a deep-supervised U-Net on BSDS500, the class-balanced edge loss,
classic baselines (Canny, Sobel), and the BSDS benchmarks (`bsds/`), exact and fast."""

from __future__ import annotations

from functools import partial

from perpixel.engine.task import Task
from perpixel.tasks.edges.classic import CLASSIC, ClassicDetector
from perpixel.tasks.edges.cli import add_commands, evaluate_command
from perpixel.tasks.edges.defaults import DEFAULTS
from perpixel.tasks.edges.module import EdgeTask
from perpixel.tasks.edges.predict import HED_NAME, EdgeDetector, edge_predictor, hed_task
from perpixel.tasks.edges.train import train

TASK = Task(
    name="edges",
    summary="edge detection: the probability of a boundary at every pixel",
    defaults=DEFAULTS,
    module=EdgeTask,
    output="edges",
    train=train,
    evaluate=evaluate_command,
    predictor=edge_predictor,
    builtins={
        HED_NAME: hed_task,
        **{name: partial(ClassicDetector, name) for name in CLASSIC},
    },
    add_commands=add_commands,
)

__all__ = ["TASK", "EdgeDetector", "EdgeTask", "train"]
