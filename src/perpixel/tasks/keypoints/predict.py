"""Interest-point inference: `perpixel.load(checkpoint).predict(image)` -> {"keypoints" (N, 2)
xy pixels, "scores" (N,), "descriptors" (N, D) when the model has them}."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from perpixel.engine.predictor import ImageLike, Predictor, to_tensor
from perpixel.errors import PerpixelError
from perpixel.io import atomic_path
from perpixel.models.keypoints import sample_descriptors, to_gray
from perpixel.tasks.keypoints.module import KeypointTask


def pad8(image: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> zero-padded on the right and bottom to multiples of 8."""
    h, w = image.shape[-2:]
    return F.pad(image, (0, -w % 8, 0, -h % 8))


def as_gray(image: ImageLike | torch.Tensor) -> torch.Tensor:
    """Any image input -> (1, H, W) gray in [0, 1]."""
    t = to_tensor(image) if not isinstance(image, torch.Tensor) else image
    if t.dim() == 2:
        t = t[None]
    return to_gray(t) if t.shape[0] == 3 else t


class KeypointDetector(Predictor):
    """A trained detector (a `KeypointTask`); `predict_folder` writes NAME.npz (plain arrays
    keypoints, scores, descriptors) and NAME.png (the points drawn on the image)."""

    outputs = "NAME.npz (keypoints, scores, descriptors) + NAME.png"

    def __init__(self, task: KeypointTask, device: str = "cpu", detect: dict | None = None):
        self.task = task.to(device).eval()
        self.device = device
        self.detect_conf = {**task.config["detect"], **(detect or {})}

    @property
    def has_descriptors(self) -> bool:
        return self.task.has_descriptors

    def logits(self, gray: torch.Tensor) -> torch.Tensor:
        """(n, 1, H, W) -> (n, 65, H/8, W/8) detector logits (H, W multiples of 8)."""
        with torch.inference_mode():
            return self.task(gray.to(self.device))["logits"].float()

    @torch.inference_mode()
    def predict(self, image: ImageLike | torch.Tensor) -> dict[str, torch.Tensor]:
        """One image -> {"keypoints": (N, 2), "scores": (N,), "descriptors": (N, D)?}, sorted
        by score; points in the padding added to reach multiples of 8 are dropped."""
        from perpixel.tasks.keypoints.decode import detect
        from perpixel.tasks.keypoints.labels import heatmap

        gray = as_gray(image)
        h, w = gray.shape[-2:]
        out = self.task(pad8(gray[None]).to(self.device))
        heat = heatmap(out["logits"].float())[:, :h, :w]
        kp, sc = detect(heat, **self.detect_conf)[0]
        result = {"keypoints": kp.cpu(), "scores": sc.cpu()}
        if "descriptors" in out:
            result["descriptors"] = sample_descriptors(out["descriptors"].float(), [kp])[0].cpu()
        return result

    def write(self, out_dir: Path, item: dict, prediction: dict) -> Path:
        from perpixel.tasks.keypoints.figures import draw_keypoints

        out_dir = Path(out_dir)
        with atomic_path(out_dir / f"{item['name']}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **{k: v.numpy() for k, v in prediction.items()})
        draw_keypoints(item["image"], prediction["keypoints"], out_dir / f"{item['name']}.png")
        return out_dir / f"{item['name']}.npz"


def keypoint_predictor(target: KeypointTask, device: str = "cpu") -> KeypointDetector:
    """The registry's predictor maker: a `KeypointTask` -> its `KeypointDetector`."""
    return KeypointDetector(target, device)


SHIPPED = Path(__file__).parent / "weights" / "superpoint.ckpt"


def shipped_superpoint(device: str = "cpu") -> KeypointDetector:
    """The SuperPoint trained here and shipped with the package (`--model superpoint`)."""
    if not SHIPPED.is_file():
        raise PerpixelError(
            "no SuperPoint weights ship with this version; train one (README, Interest points) "
            "and pass it with --model CHECKPOINT"
        )
    return KeypointDetector(KeypointTask.load(SHIPPED, device), device)


def read_for_matching(
    path: str | Path, max_size: int | None = 640
) -> tuple[torch.Tensor, tuple[int, int]]:
    """An image file -> ((1, h, w) gray in [0, 1] shrunk so its long side is <= `max_size`,
    the file's own (H, W))."""
    gray = as_gray(path)
    full = (int(gray.shape[-2]), int(gray.shape[-1]))
    h, w = full
    if max_size and max(h, w) > max_size:
        s = max_size / max(h, w)
        size = (round(h * s), round(w * s))
        gray = F.interpolate(gray[None], size, mode="bilinear", antialias=True)[0]
    return gray, full
