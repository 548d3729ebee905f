"""ONNX export with dynamic batch/height/width, checked against PyTorch in ONNX Runtime."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from perpixel.errors import PerpixelError
from perpixel.io import atomic_path


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    sample_size: tuple[int, int] = (96, 128),
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-3,
) -> dict:
    """Export `model` ((B, 3, H, W) in [0, 1] -> (B, C, H, W) logits) to ONNX.

    Input `image`, output `logits`; batch, height and width are dynamic. With `check`, ONNX
    Runtime runs the file at a size other than the traced one and must agree with PyTorch
    within `atol`; a failed check leaves no file behind.

    Returns:
        {"path", "max_abs_diff", "checked_size"}.
    """
    model = model.float().eval()
    dummy = torch.rand(1, 3, *sample_size)
    report: dict = {"path": str(path)}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=opset,
            dynamo=False,
        )
        if check:
            import onnxruntime as ort

            x = torch.rand(2, 3, sample_size[0] + 37, sample_size[1] + 13)
            with torch.inference_mode():
                ref = model(x).numpy()
            sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = sess.run(["logits"], {"image": x.numpy()})[0]
            if got.shape != ref.shape:
                raise PerpixelError(
                    f"ONNX output shape {got.shape} != PyTorch {ref.shape} at input {tuple(x.shape)}"
                )
            diff = float(np.abs(got - ref).max())
            if diff > atol:
                raise PerpixelError(
                    f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {atol}); file not written"
                )
            report.update(max_abs_diff=diff, checked_size=list(x.shape))
    return report
