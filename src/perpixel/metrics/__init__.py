"""Metrics: written once, used by training, evaluation and benchmarks alike."""

from perpixel.metrics.segmentation import (
    SegmentationMetrics,
    confusion_matrix,
    metrics_from_confusion,
)

__all__ = ["SegmentationMetrics", "confusion_matrix", "metrics_from_confusion"]
