"""Task-independent plumbing: the base module, data module, trainer, checkpoints (plain data),
predictor base and ONNX export."""
