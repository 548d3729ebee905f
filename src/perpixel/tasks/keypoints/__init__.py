"""Interest points: MagicPoint on synthetic shapes (65-way classification of 8x8 cells),
homographic adaptation of unlabelled images, SuperPoint descriptors, matching with RANSAC,
and the detection / homography benchmarks against the classic detectors."""

from __future__ import annotations

from perpixel.engine.task import Task
from perpixel.tasks.keypoints.cli import add_commands, evaluate_command
from perpixel.tasks.keypoints.defaults import DEFAULTS
from perpixel.tasks.keypoints.module import KeypointTask
from perpixel.tasks.keypoints.predict import KeypointDetector, keypoint_predictor
from perpixel.tasks.keypoints.train import train

TASK = Task(
    name="keypoints",
    summary="interest points: which pixel of each 8x8 cell holds a point, and descriptors",
    defaults=DEFAULTS,
    module=KeypointTask,
    output="keypoints",
    train=train,
    evaluate=evaluate_command,
    predictor=keypoint_predictor,
    add_commands=add_commands,
)

__all__ = ["TASK", "KeypointDetector", "KeypointTask", "train"]
