"""Scores of dense predictions shared by the segmentation family of tasks, written once and
used by training, evaluation and the benchmarks: the confusion matrix and what follows from it
(IoU, accuracies), instance-weighted and category scores (iIoU), panoptic quality, mask AP."""
