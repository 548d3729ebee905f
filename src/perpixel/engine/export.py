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

    Input `image`, output `logits`; batch, height and width are dynamic. A model that returns
    a tuple names its outputs in `model.output_names`, and one that takes only sizes that are
    multiples of k says so in `model.size_multiple`. With `check`, ONNX Runtime runs the file
    at a size other than the traced one and must agree with PyTorch within `atol`; a failed
    check leaves no file behind. A model (or submodule) with `exportable = False` is refused
    with a PerpixelError naming it and its `not_exportable_because`.

    Returns:
        {"path", "max_abs_diff", "checked_size"}.
    """
    for m in model.modules():
        if getattr(m, "exportable", True) is False:
            from perpixel.models import MODELS

            name = next((n for n, cls in MODELS.items() if cls is type(m)), type(m).__name__)
            why = getattr(m, "not_exportable_because", "")
            raise PerpixelError(f"{name} cannot be exported to ONNX" + (f": {why}" if why else ""))
    model = model.float().eval()
    names = list(getattr(model, "output_names", ("logits",)))
    k = int(getattr(model, "size_multiple", 1))
    sample_size = (-(-sample_size[0] // k) * k, -(-sample_size[1] // k) * k)  # traceable sizes
    dummy = torch.rand(1, 3, *sample_size)
    report: dict = {"path": str(path)}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=["image"],
            output_names=names,
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                **{n: {0: "batch", 2: f"{n}_height", 3: f"{n}_width"} for n in names},
            },
            opset_version=opset,
            dynamo=False,
        )
        if check:
            import onnxruntime as ort

            size = [-(-(s + d) // k) * k for s, d in zip(sample_size, (37, 13), strict=True)]
            x = torch.rand(2, 3, *size)
            with torch.inference_mode():
                out = model(x)
            refs = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
            sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            diff = 0.0
            for got, ref in zip(sess.run(names, {"image": x.numpy()}), refs, strict=True):
                if got.shape != ref.shape:
                    raise PerpixelError(
                        f"ONNX output shape {got.shape} != PyTorch {ref.shape} at input {tuple(x.shape)}"
                    )
                diff = max(diff, float(np.abs(got - ref).max()))
            if diff > atol:
                raise PerpixelError(
                    f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {atol}); file not written"
                )
            report.update(max_abs_diff=diff, checked_size=list(x.shape))
    return report
