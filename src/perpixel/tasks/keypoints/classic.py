"""Classic interest-point baselines, returning what our network's decoding returns.

Detectors give a dense (B, H, W) response that `decode.detect` turns into points, as the
reference evaluation (rpautrat/SuperPoint, superpoint/models/classical_detectors.py) turns its
OpenCV maps into points with the same box NMS as MagicPoint's:

- Harris: cv2.cornerHarris(blockSize=4, ksize=3, k=0.04). Computed here in PyTorch with
  OpenCV's exact structure tensor (3x3 Sobel, 4x4 box window whose anchor is (2, 2), reflect-101
  borders, OpenCV's scale), equal to cv2's output to float precision. kornia's harris_response
  and gftt_response use a fixed 7x7 Gaussian window instead, so they are not used.
- Shi-Tomasi: the reference sweeps goodFeaturesToTrack's qualityLevel (blockSize 3, minimum
  eigenvalue) and gives each corner the highest level that keeps it, i.e. its minimum eigenvalue
  over the image's largest; the dense equivalent is cv2.cornerMinEigenVal(blockSize=3, ksize=3)
  divided by its maximum (its 3x3 local-maximum and 5 px minimum-distance steps are left to the
  NMS of the decoding).
- FAST: cv2.FastFeatureDetector_create(threshold=10), non-maximum suppression on (OpenCV's
  default), each keypoint's response at its pixel.

With `normalize=True` (the default) responses are clipped at 0 and divided by each image's
maximum, so that one threshold means the same on every image; `normalize=False` gives OpenCV's
raw units (what the reference ranked when pooling images for its mAP).

Detector-descriptors (reference: classical_detectors_descriptors.py): SIFT and ORB with
nfeatures=1500 on the 8-bit image, returning keypoints (N, 2) xy, scores (N,) (OpenCV's
response), sorted by score descending, and descriptors: SIFT float32 (N, 128) L2-normalised,
ORB uint8 (N, 32), matched by Hamming distance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError, PerpixelError
from perpixel.tasks.keypoints.matching import mutual_nearest_neighbours

_OPENCV = {"fast", "sift", "orb"}
_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def opencv_available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def _cv2(name: str):
    try:
        import cv2
    except ImportError:
        raise PerpixelError(f"{name} needs OpenCV: pip install 'perpixel[classic]'") from None
    return cv2


def _gray4(gray: torch.Tensor) -> torch.Tensor:
    """(H, W), (1, H, W) or (B, 1, H, W) -> (B, 1, H, W) float."""
    g = torch.as_tensor(gray)
    if g.dim() == 2:
        g = g[None, None]
    elif g.dim() == 3:
        g = g[None]
    if g.dim() != 4 or g.shape[1] != 1:
        raise ValueError(f"expected a (B, 1, H, W) grayscale batch, got shape {tuple(g.shape)}")
    return g.float()


def _uint8(gray: torch.Tensor) -> np.ndarray:
    """One (H, W) image in [0, 1] -> uint8, rounded (the reference truncates im * 255, which
    turns a stored 8-bit value v / 255 * 255 into v - 1 whenever float rounding falls below)."""
    return (gray.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def structure_tensor(
    gray: torch.Tensor, block_size: int, ksize: int = 3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV's cornerEigenValsVecs sums (Σ dx², Σ dx dy, Σ dy²), each (B, H, W) float64:
    3x3 Sobel gradients scaled by 1 / (2^(ksize-1) * block_size), summed over a block_size box
    anchored at block_size // 2, reflect-101 borders (OpenCV's default)."""
    if ksize != 3:
        raise ValueError("only the 3x3 Sobel aperture is implemented")
    x = _gray4(gray).double()
    k = torch.stack([_SOBEL, _SOBEL.T])[:, None].to(x)
    d = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k) / ((1 << (ksize - 1)) * block_size)
    dx, dy = d[:, :1], d[:, 1:]
    prods = torch.cat([dx * dx, dx * dy, dy * dy], dim=1)
    lo, hi = block_size // 2, block_size - block_size // 2 - 1
    sums = F.avg_pool2d(F.pad(prods, (lo, hi, lo, hi), mode="reflect"), block_size, stride=1)
    sums = sums * block_size * block_size
    return sums[:, 0], sums[:, 1], sums[:, 2]


def _finish(r: torch.Tensor, normalize: bool) -> torch.Tensor:
    if not normalize:
        return r.float()
    r = r.clamp(min=0)
    peak = r.flatten(1).amax(dim=1).clamp(min=torch.finfo(r.dtype).tiny)
    return (r / peak[:, None, None]).float()


def harris_response(
    gray: torch.Tensor, k: float = 0.04, block_size: int = 4, normalize: bool = True
) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> (B, H, W) Harris response det - k trace², as
    cv2.cornerHarris(img, block_size, 3, k); normalised as the module says."""
    a, b, c = structure_tensor(gray, block_size)
    return _finish(a * c - b * b - k * (a + c) ** 2, normalize)


def shi_tomasi_response(
    gray: torch.Tensor, block_size: int = 3, normalize: bool = True
) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> (B, H, W) minimum eigenvalue of the structure tensor, as
    cv2.cornerMinEigenVal(img, block_size, 3); normalised as the module says."""
    a, b, c = structure_tensor(gray, block_size)
    a, c = a * 0.5, c * 0.5
    return _finish((a + c) - torch.sqrt((a - c) ** 2 + b * b), normalize)


def fast_response(gray: torch.Tensor, threshold: int = 10, normalize: bool = True) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> (B, H, W) sparse: each OpenCV FAST keypoint's response at its
    pixel (threshold on 8-bit intensities; OpenCV's non-maximum suppression, without which it
    leaves every response 0), 0 elsewhere; normalised as the module says."""
    cv2 = _cv2("FAST")
    g = _gray4(gray)
    fast = cv2.FastFeatureDetector_create(threshold, True)
    out = torch.zeros(g.shape[0], g.shape[2], g.shape[3], dtype=torch.float64)
    for i in range(g.shape[0]):
        kps = fast.detect(_uint8(g[i, 0]), None)
        if not kps:
            continue
        xy = torch.tensor([kp.pt for kp in kps], dtype=torch.float64).round().long()
        resp = torch.tensor([kp.response for kp in kps], dtype=torch.float64)
        flat = xy[:, 1] * g.shape[3] + xy[:, 0]
        out[i].view(-1).scatter_reduce_(0, flat, resp, reduce="amax")
    return _finish(out, normalize).to(g.device)


def _detect_describe(gray: torch.Tensor, detector, name: str):
    g = _gray4(gray)
    if g.shape[0] != 1:
        raise ValueError(f"{name} takes one image, got a batch of {g.shape[0]}")
    kps, desc = detector.detectAndCompute(_uint8(g[0, 0]), None)
    xy = torch.tensor([kp.pt for kp in kps], dtype=torch.float32).reshape(-1, 2)
    scores = torch.tensor([kp.response for kp in kps], dtype=torch.float32)
    order = torch.argsort(scores, descending=True, stable=True)
    return xy[order], scores[order], desc, order


def sift(gray: torch.Tensor, nfeatures: int = 1500):
    """One image ((H, W) or (1, 1, H, W) in [0, 1]) -> (keypoints (N, 2) xy, scores (N,),
    descriptors (N, 128) float32 L2-normalised), best score first; OpenCV's SIFT."""
    cv2 = _cv2("SIFT")
    xy, scores, desc, order = _detect_describe(gray, cv2.SIFT_create(nfeatures=nfeatures), "SIFT")
    d = torch.zeros(0, 128) if desc is None else torch.from_numpy(np.asarray(desc, np.float32))
    d = F.normalize(d.reshape(-1, 128)[order], dim=1)
    return xy, scores, d


def orb(gray: torch.Tensor, nfeatures: int = 1500):
    """One image ((H, W) or (1, 1, H, W) in [0, 1]) -> (keypoints (N, 2) xy, scores (N,),
    descriptors (N, 32) uint8), best score first; OpenCV's ORB."""
    cv2 = _cv2("ORB")
    xy, scores, desc, order = _detect_describe(gray, cv2.ORB_create(nfeatures=nfeatures), "ORB")
    d = torch.zeros(0, 32, dtype=torch.uint8) if desc is None else torch.from_numpy(desc)
    return xy, scores, d.reshape(-1, 32)[order]


def hamming_mutual_nearest_neighbours(desc_a: torch.Tensor, desc_b: torch.Tensor) -> torch.Tensor:
    """(K, 2) mutual nearest neighbours of uint8 binary descriptors by Hamming distance."""
    return mutual_nearest_neighbours(desc_a, desc_b, metric="hamming")


CLASSIC_DETECTORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "harris": harris_response,
    "shi_tomasi": shi_tomasi_response,
    "fast": fast_response,
}
CLASSIC_DESCRIPTORS: dict[str, Callable] = {"sift": sift, "orb": orb}


def needs_opencv(name: str) -> bool:
    """Whether the classic method `name` needs the optional OpenCV."""
    if name not in CLASSIC_DETECTORS and name not in CLASSIC_DESCRIPTORS:
        known = ", ".join([*CLASSIC_DETECTORS, *CLASSIC_DESCRIPTORS])
        raise ConfigError(f"unknown classic method {name!r}: choose from {known}")
    return name in _OPENCV
