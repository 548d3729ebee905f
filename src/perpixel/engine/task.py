"""What a task package hands the registry (`perpixel.tasks.TASKS`): its defaults, module,
training and evaluation entry points, predictor and command-line verbs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perpixel.engine.module import TaskModule
from perpixel.engine.predictor import Predictor


@dataclass(frozen=True)
class Task:
    """One task of the toolkit.

    Attributes:
        name: the registry name, a recipe's `task:`.
        summary: one line for `perpixel --help`.
        defaults: the full recipe every recipe of this task changes.
        module: the LightningModule class its checkpoints rebuild.
        output: what its models return ("logits" | "edges"), see `perpixel.models.MODELS`.
        train: (recipe, resume, recipe=name) -> {"best", "last", "best_score", "monitor",
            "seconds", "report", ...}; writes the run folder and its report.
        evaluate: (module or built-in predictor, parsed `perpixel evaluate` args) -> None;
            writes the report and prints a summary.
        predictor: (module or built-in predictor, device) -> Predictor.
        builtins: names usable in place of a checkpoint (e.g. "hed") -> a maker of the
            module or predictor.
        add_commands: adds the task's own verbs to the `perpixel` parser.
    """

    name: str
    summary: str
    defaults: dict[str, Any]
    module: type[TaskModule]
    output: str
    train: Callable[..., dict]
    evaluate: Callable[[Any, argparse.Namespace], None]
    predictor: Callable[[Any, str], Predictor]
    builtins: dict[str, Callable[[], Any]] = field(default_factory=dict)
    add_commands: Callable[[Any, Callable], None] | None = None
