"""Descriptor matching and robust homography estimation.

Matching is brute-force mutual nearest neighbours, what the reference evaluation does with
OpenCV's `BFMatcher(crossCheck=True)` (L2 for float descriptors, Hamming for ORB). Homographies
come from RANSAC: OpenCV's `findHomography(..., RANSAC, threshold)` when installed (the
reference's choice, threshold 3 px) or kornia's `RANSAC`.
"""

from __future__ import annotations

import numpy as np
import torch

from perpixel.errors import ConfigError, PerpixelError

_BITS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def _bits(desc: torch.Tensor) -> torch.Tensor:
    """(N, B) uint8 binary descriptors -> (N, 8 B) float 0/1."""
    d = torch.as_tensor(desc).to(torch.uint8)
    return ((d[:, :, None] & _BITS.to(d.device)) > 0).flatten(1).float()


def distances(desc_a: torch.Tensor, desc_b: torch.Tensor, metric: str = "l2") -> torch.Tensor:
    """(N, M) distances: Euclidean ("l2") or Hamming in bits ("hamming", uint8 descriptors)."""
    if metric == "l2":
        return torch.cdist(desc_a.float()[None], desc_b.float()[None])[0]
    if metric == "hamming":
        a, b = _bits(desc_a), _bits(desc_b)
        return a @ (1 - b).T + (1 - a) @ b.T
    raise ConfigError(f"unknown descriptor metric {metric!r}: use 'l2' or 'hamming'")


def mutual_nearest_neighbours(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    ratio: float | None = None,
    metric: str = "l2",
) -> torch.Tensor:
    """Pairs (i, j) where b_j is a_i's nearest neighbour and a_i is b_j's.

    Args:
        desc_a, desc_b: (N, D) and (M, D) descriptors (float, L2-normalised for "l2"; uint8
            for "hamming").
        ratio: when given, also require d1 <= ratio * d2, d1 and d2 the distances from a_i to
            its nearest and second-nearest b (Lowe's test; passes when M == 1).
        metric: "l2" (Euclidean) or "hamming".

    Returns:
        (K, 2) long indices into a and b, ordered by i.
    """
    n, m = len(desc_a), len(desc_b)
    if n == 0 or m == 0:
        return torch.zeros(0, 2, dtype=torch.long, device=torch.as_tensor(desc_a).device)
    d = distances(desc_a, desc_b, metric)
    d1, nn_ab = d.min(dim=1)
    nn_ba = d.argmin(dim=0)
    idx = torch.arange(n, device=d.device)
    keep = nn_ba[nn_ab] == idx
    if ratio is not None and m > 1:
        d2 = d.topk(2, dim=1, largest=False).values[:, 1]
        keep &= d1 <= ratio * d2
    return torch.stack([idx[keep], nn_ab[keep]], dim=1)


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PerpixelError(
            "homography estimation with method='opencv' needs OpenCV: "
            "pip install 'perpixel[classic]'"
        ) from None
    return cv2


def _opencv_available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def estimate_homography(
    points_a: torch.Tensor,
    points_b: torch.Tensor,
    method: str = "auto",
    threshold: float = 3.0,
    seed: int = 0,
    max_iter: int = 10,
) -> tuple[torch.Tensor | None, torch.Tensor, str]:
    """RANSAC homography mapping points_a to points_b ((K, 2) xy each, K correspondences).

    Args:
        method: "opencv" (cv2.findHomography, cv2.RANSAC, reprojection threshold `threshold`,
            OpenCV's other defaults: 2000 iterations, confidence 0.995; its sampler has a fixed
            seed), "kornia" (kornia.geometry.ransac.RANSAC("homography"), `inl_th=threshold`:
            kornia 0.9 takes it in pixels and compares the squared one-way transfer error with
            its square; confidence 0.99, `max_iter` batches of samples, seeded by `seed`), or
            "auto": OpenCV when installed, else kornia.
        threshold: inlier reprojection error, px (the reference's 3).

    Returns:
        (H (3, 3) float64 with H[2, 2] = 1, or None when fewer than 4 correspondences or no
        model; inliers (K,) bool; the method that ran: "opencv" or "kornia").
    """
    if method == "auto":
        method = "opencv" if _opencv_available() else "kornia"
    if method not in ("opencv", "kornia"):
        raise ConfigError(f"unknown homography method {method!r}: use 'auto', 'opencv', 'kornia'")
    pa = torch.as_tensor(points_a).detach().cpu().double().reshape(-1, 2)
    pb = torch.as_tensor(points_b).detach().cpu().double().reshape(-1, 2)
    none = torch.zeros(len(pa), dtype=torch.bool)
    if len(pa) < 4:
        if method == "opencv":
            _cv2()  # the same error as with enough points when OpenCV is absent
        return None, none, method
    if method == "opencv":
        cv2 = _cv2()
        H, mask = cv2.findHomography(
            np.ascontiguousarray(pa.numpy()),
            np.ascontiguousarray(pb.numpy()),
            cv2.RANSAC,
            threshold,
        )
        if H is None:
            return None, none, method
        Ht = torch.from_numpy(np.asarray(H, dtype=np.float64))
        inliers = torch.from_numpy(mask.reshape(-1).astype(bool))
    else:
        from kornia.geometry.ransac import RANSAC

        ransac = RANSAC(
            "homography", inl_th=threshold, max_iter=max_iter, confidence=0.99, seed=seed
        )
        Ht, inliers = ransac(pa, pb)
        Ht, inliers = Ht.double().cpu(), inliers.cpu().bool()
        if not torch.isfinite(Ht).all() or Ht.abs().sum() == 0:  # kornia's "no model"
            return None, none, method
    if Ht[2, 2].abs() < 1e-12:
        return None, none, method
    return Ht / Ht[2, 2], inliers, method
