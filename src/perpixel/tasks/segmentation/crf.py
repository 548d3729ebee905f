"""The fully connected CRF (Krahenbuhl & Koltun 2011), DeepLab's post-processing.

Energy of a labelling x: E(x) = sum_i U_i(x_i) + sum_{i<j} [x_i != x_j] sum_m w_m k_m(i, j),
with U = -log(probs) (clipped at 1e-5, as pydensecrf's `unary_from_softmax`), Potts
compatibility, and two Gaussian kernels on pixel positions p (pixels) and colours I (0-255):

    bilateral (appearance)  w1 * exp(-|p_i - p_j|^2 / 2 theta_alpha^2 - |I_i - I_j|^2 / 2 theta_beta^2)
    gaussian (smoothness)   w2 * exp(-|p_i - p_j|^2 / 2 theta_gamma^2)

Each kernel matrix K is used symmetrically normalised, D^-1/2 K D^-1/2 with D = diag(K 1)
(pydensecrf's default NORMALIZE_SYMMETRIC), which makes the weights independent of image size
and of the lattice's density-dependent gain. Mean field from Q = softmax(-U) repeats

    Q <- softmax(-U + sum_m w_m Khat_m Q)

which, the kernels being positive semidefinite, is the concave-convex procedure on the free
energy `crf_energy` (Krahenbuhl & Koltun 2013): it never increases it. Both kernels are
filtered with the permutohedral lattice (`permutohedral.py`), the 2-D smoothness one too rather
than with a separable Gaussian blur: exact to 3 sigma at theta_gamma = 3 that blur takes 19 taps
a pass, ~70 M multiply-adds a call at 480x360 with 11 classes (a plain numba version took 20x
the lattice's time) against the lattice's 3 vertices a pixel, whatever theta, and the
lattice keeps us identical to pydensecrf, which filters both kernels so (its error on the
normalised 2-D kernel: ~0.5%, see the tests). `crf_energy` uses the exact kernels (O(N^2)).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numba
import numpy as np

from perpixel.tasks.segmentation.defaults import CRF_DEFAULTS
from perpixel.tasks.segmentation.permutohedral import PermutohedralLattice

PROB_CLIP = 1e-5  # probabilities below this are raised to it before the log (pydensecrf's)
BRUTE_FORCE_MAX_PIXELS = 4096  # crf_energy's exact O(N^2) kernels: small images only


@dataclass(frozen=True)
class DenseCRF:
    """The CRF's parameters (see `CRF_DEFAULTS`); `crf(image, probs)` -> Q marginals."""

    iterations: int = int(CRF_DEFAULTS["iterations"])
    bilateral_weight: float = CRF_DEFAULTS["bilateral_weight"]
    theta_alpha: float = CRF_DEFAULTS["theta_alpha"]
    theta_beta: float = CRF_DEFAULTS["theta_beta"]
    gaussian_weight: float = CRF_DEFAULTS["gaussian_weight"]
    theta_gamma: float = CRF_DEFAULTS["theta_gamma"]

    def __post_init__(self) -> None:
        it = self.iterations
        if isinstance(it, bool) or not isinstance(it, int | np.integer) or it < 0:
            raise ValueError(f"CRF parameter 'iterations' must be an integer >= 0, got {it!r}")
        for name in (
            "bilateral_weight",
            "gaussian_weight",
            "theta_alpha",
            "theta_beta",
            "theta_gamma",
        ):
            v = getattr(self, name)
            weight = name.endswith("weight")
            ok = isinstance(v, int | float | np.number) and not isinstance(v, bool)
            if not ok or not math.isfinite(v) or (v < 0 if weight else v <= 0):
                need = ">= 0" if weight else "> 0"
                raise ValueError(
                    f"CRF parameter '{name}' must be a finite number {need}, got {v!r}"
                )

    @classmethod
    def from_params(cls, **params: float) -> DenseCRF:
        """Parameters by name (unknown names: ValueError); missing ones from `CRF_DEFAULTS`."""
        unknown = sorted(set(params) - set(CRF_DEFAULTS))
        if unknown:
            raise ValueError(
                f"unknown CRF parameter {unknown[0]!r}; known: {', '.join(CRF_DEFAULTS)}"
            )
        return cls(**params)  # type: ignore[arg-type]

    def params(self) -> dict[str, float]:
        return asdict(self)

    def features(self, image: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(H, W, 3) uint8 image -> [(weight, (N, d) float32 features in kernel stds)] for the
        bilateral (d = 5: x, y, r, g, b) and the gaussian (d = 2: x, y) kernel."""
        h, w = image.shape[:2]
        yx = np.mgrid[:h, :w].astype(np.float32)
        xy = np.stack([yx[1], yx[0]], -1).reshape(-1, 2)
        rgb = image.reshape(-1, 3).astype(np.float32)
        bilateral = np.concatenate([xy / self.theta_alpha, rgb / self.theta_beta], 1)
        return [
            (self.bilateral_weight, bilateral.astype(np.float32)),
            (self.gaussian_weight, (xy / self.theta_gamma).astype(np.float32)),
        ]

    def __call__(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 image, (C, H, W) class probabilities -> (C, H, W) float32 Q."""
        unary = unary_energy(probs, image)
        c, h, w = probs.shape
        pairwise = [LatticeKernel(wt, f) for wt, f in self.features(image) if wt > 0]
        *_, q = mean_field(unary, pairwise, self.iterations)
        return np.ascontiguousarray(q.T).reshape(c, h, w)


def dense_crf(image: np.ndarray, probs: np.ndarray, **params: float) -> np.ndarray:
    """(H, W, 3) uint8 image, (C, H, W) softmax probabilities -> (C, H, W) float32 mean-field
    marginals Q. `params`: any of `CRF_DEFAULTS`' keys (ValueError on unknown or bad ones)."""
    return DenseCRF.from_params(**params)(image, probs)


def unary_energy(probs: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) probabilities -> (N, C) float32 unary -log(max(p, 1e-5)), pixels row-major."""
    p = np.asarray(probs)
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"probs must be (C, H, W), got shape {p.shape}")
    if image is not None:
        im = np.asarray(image)
        if im.dtype != np.uint8 or im.shape != (*p.shape[1:], 3):
            raise ValueError(
                f"image must be (H, W, 3) uint8 matching probs {p.shape}, got {im.shape} {im.dtype}"
            )
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("probs must be finite and >= 0")
    u = -np.log(np.clip(p.reshape(p.shape[0], -1).T, PROB_CLIP, 1.0))
    return np.ascontiguousarray(u, np.float32)


class LatticeKernel:
    """A pairwise term w * D^-1/2 K D^-1/2, K filtered with the permutohedral lattice."""

    def __init__(self, weight: float, features: np.ndarray):
        self.lattice = PermutohedralLattice(features)
        n = self.lattice.n
        norm = self.lattice(np.ones((n, 1), np.float32))[:, 0]
        self.scale = (1.0 / np.sqrt(norm + 1e-20)).astype(np.float32)
        self.weighted_scale = (weight * self.scale).astype(np.float32)

    def add_message(self, q: np.ndarray, out: np.ndarray) -> None:
        """out += w Khat q in place; q, out (N, C) float32."""
        self.lattice.accumulate(q, self.scale, self.weighted_scale, out)


class MatrixKernel:
    """The same term with an explicit (N, N) kernel matrix K (the brute-force reference)."""

    def __init__(self, weight: float, kernel: np.ndarray):
        s = 1.0 / np.sqrt(kernel.sum(1))
        self.weight = weight
        self.normalized = s[:, None] * kernel * s[None]

    def add_message(self, q: np.ndarray, out: np.ndarray) -> None:
        out += (self.weight * (self.normalized @ q)).astype(np.float32)


class PairwiseTerm(Protocol):
    def add_message(self, q: np.ndarray, out: np.ndarray) -> None: ...


@numba.njit(cache=True, nogil=True)
def _subtract_row_max(x):
    for i in range(x.shape[0]):
        top = x[i, 0]
        for ch in range(1, x.shape[1]):
            top = max(top, x[i, ch])
        for ch in range(x.shape[1]):
            x[i, ch] -= top


@numba.njit(cache=True, nogil=True)
def _normalize_rows(x):
    for i in range(x.shape[0]):
        total = np.float32(0.0)
        for ch in range(x.shape[1]):
            total += x[i, ch]
        inv = np.float32(1.0) / total
        for ch in range(x.shape[1]):
            x[i, ch] *= inv


def _softmax_rows(logits: np.ndarray, out: np.ndarray) -> None:
    """out = softmax of (N, C) float32 logits over C; logits are shifted in place."""
    _subtract_row_max(logits)
    np.exp(logits, out=out)  # numpy's SIMD exp: several times numba's scalar one
    _normalize_rows(out)


def mean_field(
    unary: np.ndarray, pairwise: Sequence[PairwiseTerm], iterations: int
) -> Iterator[np.ndarray]:
    """Yields Q (N, C) float32: softmax(-unary), then after each of `iterations` parallel
    updates Q <- softmax(-unary + sum_m w_m Khat_m Q) (Potts). Q is reused: copy to keep it."""
    n, c = unary.shape
    # classes padded to a multiple of 8 (whole SIMD vectors: the lattice runs ~1.5x faster);
    # padding has unary +inf, so its Q is exactly 0 and its messages stay 0
    padded = np.full((n, -(-c // 8) * 8), np.inf, np.float32)
    padded[:, :c] = unary
    logits = -padded
    q = np.empty_like(logits)
    _softmax_rows(logits, q)
    yield q[:, :c]
    for _ in range(iterations):
        np.negative(padded, out=logits)
        for term in pairwise:
            term.add_message(q, logits)
        _softmax_rows(logits, q)
        yield q[:, :c]


def gaussian_matrix(features: np.ndarray) -> np.ndarray:
    """(N, d) features -> (N, N) float64 exp(-|f_i - f_j|^2 / 2), exact (small N only)."""
    f = np.asarray(features, np.float64)
    sq = (f * f).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2 * f @ f.T, 0.0)
    return np.exp(-0.5 * d2)


def exact_pairwise(crf: DenseCRF, image: np.ndarray) -> list[MatrixKernel]:
    """The pairwise terms with exact Gaussian kernel matrices (brute force, small images)."""
    n = image.shape[0] * image.shape[1]
    if n > BRUTE_FORCE_MAX_PIXELS:
        raise ValueError(f"exact kernels are O(N^2): {n} pixels > {BRUTE_FORCE_MAX_PIXELS}")
    return [MatrixKernel(w, gaussian_matrix(f)) for w, f in crf.features(image)]


def crf_energy(image: np.ndarray, probs: np.ndarray, q: np.ndarray, **params: float) -> float:
    """Mean-field free energy F(Q) with the exact (brute-force) kernels; small images only.

    q: (C, H, W) marginals, or (H, W) integer labels (one-hot: then F is the Gibbs energy
    E(x) of the labelling). F(Q) = sum_i,l Q_il (U_il + log Q_il)
    + 1/2 sum_m w_m sum_{i,j} Khat_m(i, j) (1 - sum_l Q_il Q_jl), the free energy whose
    concave-convex minimisation is the mean-field update (the i = j terms included)."""
    crf = DenseCRF.from_params(**params)
    unary = unary_energy(probs, image).astype(np.float64)
    c = unary.shape[1]
    qa = np.asarray(q)
    if qa.ndim == 2:
        if not np.issubdtype(qa.dtype, np.integer) or qa.min() < 0 or qa.max() >= c:
            raise ValueError(f"labels must be integers in [0, {c}), got {qa.dtype}")
        qn = np.eye(c)[qa.reshape(-1)]
    elif qa.shape == probs.shape:
        qn = qa.reshape(c, -1).T.astype(np.float64)
    else:
        raise ValueError(f"q must be (C, H, W) like probs {probs.shape} or (H, W) labels")
    safe = np.where(qn > 0, qn, 1.0)
    energy = float((qn * (unary + np.log(safe))).sum())
    for term in exact_pairwise(crf, image):
        k = term.normalized
        energy += 0.5 * term.weight * float(k.sum() - ((k @ qn) * qn).sum())
    return energy
