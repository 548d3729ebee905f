"""The synthetic world: determinism, label consistency, and that colour alone cannot segment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perpixel.data.synthetic import (
    SYNTHETIC,
    SyntheticSample,
    SyntheticSegmentation,
    default_conf,
    generate,
)

N_STUFF = SYNTHETIC.num_classes - len(SYNTHETIC.things)


@pytest.fixture(scope="module")
def samples() -> list[SyntheticSample]:
    return [generate(11, i, height=64, width=80) for i in range(50)]


def test_taxonomy_puts_stuff_first_then_things():
    assert SYNTHETIC.names[N_STUFF:] == SYNTHETIC.things
    assert len(SYNTHETIC.things) >= 2 and N_STUFF >= 2
    assert len(set(SYNTHETIC.colors)) == SYNTHETIC.num_classes


def test_same_seed_and_index_give_identical_samples():
    a, b = generate(3, 5), generate(3, 5)
    for field in ("image", "semantic", "instances", "boundaries", "corners"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.image, generate(3, 6).image)
    assert not np.array_equal(a.image, generate(4, 5).image)


def test_shapes_and_dtypes(samples):
    s = samples[0]
    assert s.image.shape == (64, 80, 3) and s.image.dtype == np.uint8
    assert s.semantic.shape == (64, 80) and s.semantic.dtype == np.uint8
    assert s.instances.shape == (64, 80) and s.instances.dtype == np.int32
    assert s.boundaries.shape == (64, 80) and s.boundaries.dtype == np.uint8
    assert s.corners.ndim == 2 and s.corners.shape[1] == 2 and s.corners.dtype == np.float32
    default = generate(0)
    assert default.image.shape == (default_conf["height"], default_conf["width"], 3)


def test_class_ids_are_in_the_taxonomy_and_every_class_appears(samples):
    seen = np.zeros(SYNTHETIC.num_classes, bool)
    for s in samples:
        assert s.semantic.max() < SYNTHETIC.num_classes
        seen[np.unique(s.semantic)] = True
    assert seen.all(), [n for n, ok in zip(SYNTHETIC.names, seen, strict=True) if not ok]


def test_instances_agree_with_semantic(samples):
    for s in samples:
        ids = np.unique(s.instances)
        n = int(s.instances.max())
        np.testing.assert_array_equal(ids, np.arange(n + 1) if 0 in ids else np.arange(1, n + 1))
        assert (s.semantic[s.instances > 0] >= N_STUFF).all()
        assert (s.semantic[s.instances == 0] < N_STUFF).all()
        for i in range(1, n + 1):
            assert np.unique(s.semantic[s.instances == i]).size == 1
    assert sum(int(s.instances.max()) for s in samples) >= 2 * len(samples)


def test_boundaries_match_a_reference_from_the_segments(samples):
    for s in samples:
        # Stuff regions of one image have distinct classes, so class + instance names a segment.
        seg = np.where(s.instances > 0, 1000 + s.instances, s.semantic.astype(np.int32))
        ref = np.zeros_like(s.boundaries, dtype=bool)
        ref[:, :-1] |= seg[:, :-1] != seg[:, 1:]
        ref[:-1] |= seg[:-1] != seg[1:]
        np.testing.assert_array_equal(s.boundaries, ref.astype(np.uint8))
    assert any(s.boundaries.any() for s in samples)


def test_corners_are_inside_the_image_and_on_a_thing(samples):
    total = 0
    for s in samples:
        h, w = s.semantic.shape
        total += len(s.corners)
        if not len(s.corners):
            continue
        x, y = s.corners[:, 0], s.corners[:, 1]
        assert ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).all()
        ty, tx = np.nonzero(s.instances > 0)
        d2 = (tx[None] - x[:, None]) ** 2 + (ty[None] - y[:, None]) ** 2
        assert (d2.min(1) <= 1.5**2 + 1e-6).all()
    assert total >= 3 * len(samples)


def test_conf_overrides_apply():
    s = generate(1, 2, height=40, width=50, min_things=0, max_things=0)
    assert s.image.shape == (40, 50, 3)
    assert s.instances.max() == 0 and len(s.corners) == 0
    assert (s.semantic < N_STUFF).all()
    one = generate(1, 2, height=40, width=50, min_stuff=1, max_stuff=1, min_things=0, max_things=0)
    assert np.unique(one.semantic).size == 1 and not one.boundaries.any()


def test_unknown_conf_key_is_named():
    with pytest.raises(ValueError, match="colour_mode"):
        generate(0, 0, colour_mode="flat")
    with pytest.raises(ValueError, match="bogus"):
        SyntheticSegmentation(4, bogus=1)


def test_dataset_items():
    ds = SyntheticSegmentation(3, seed=7, height=32, width=48)
    assert len(ds) == 3 and ds.taxonomy is SYNTHETIC
    item = ds[2]
    assert item["name"] == "synthetic_7_000002"
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 32, 48)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["mask"].dtype == torch.int64 and item["mask"].shape == (32, 48)
    ref = generate(7, 2, height=32, width=48)
    np.testing.assert_array_equal(item["mask"].numpy(), ref.semantic)
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy() * 255, ref.image, atol=1e-3)
    with pytest.raises(IndexError):
        ds[3]
    flip = lambda d: {**d, "mask": d["mask"].flip(-1)}  # noqa: E731
    flipped = SyntheticSegmentation(3, seed=7, transform=flip, height=32, width=48)
    np.testing.assert_array_equal(flipped[0]["mask"].numpy(), ds[0]["mask"].flip(-1).numpy())


def _miou(pred: np.ndarray, target: np.ndarray, n: int) -> float:
    cm = np.bincount(target * n + pred, minlength=n * n).reshape(n, n)
    tp = np.diag(cm)
    return float(np.mean(tp / np.maximum(cm.sum(0) + cm.sum(1) - tp, 1)))


def test_colour_alone_cannot_segment():
    """Per-pixel logistic regression on RGB (the linear baseline) stays far from a CNN."""
    n = SYNTHETIC.num_classes

    def pixels(seed: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        ss = [generate(seed, i, height=48, width=48) for i in range(count)]
        x = np.concatenate([s.image.reshape(-1, 3) for s in ss])
        y = np.concatenate([s.semantic.ravel() for s in ss])
        keep = np.random.default_rng(seed).choice(len(y), 20000, replace=False)
        return torch.from_numpy(x[keep]).float() / 255, torch.from_numpy(y[keep]).long()

    x, y = pixels(0, 60)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, n)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    # it did fit something: better than a uniform guess
    assert loss.item() < np.log(n)
    xv, yv = pixels(1, 30)
    with torch.no_grad():
        pred = model(xv).argmax(1).numpy()
    assert _miou(pred, yv.numpy(), n) < 0.3
