"""The BSDS boundary benchmark: reference formulas and parity with the reference's outputs."""

import numpy as np
import pytest

from perpixel.tasks.edges.bsds.boundaries import (
    BoundaryResult,
    EdgeInput,
    average_precision,
    default_thresholds,
    image_counts,
    max_f,
    reference_files,
    seg2bdry,
)


def test_seg2bdry_small_example():
    seg = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3]])
    # pixel (i, j) is on when a label changes towards (i + 1, j) or (i, j + 1), or between
    # those two; the last row and column copy the boundary row/column before them
    expected = np.array([[0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)
    assert (seg2bdry(seg) == expected).all()
    assert not seg2bdry(np.ones((5, 5), int)).any()


def test_ground_truth_boundaries_are_thinned_seg2bdry(bsds_root):
    """BSDS's own Boundaries are bwmorph(seg2bdry(Segmentation, 'imageSize'), 'thin', Inf):
    this checks both of our ports against the data set, pixel for pixel."""
    from perpixel.tasks.edges.bsds.files import read_groundtruth
    from perpixel.tasks.edges.bsds.thin import thin

    for f in sorted((bsds_root / "bench" / "groundTruth").glob("*.mat")):
        gt = read_groundtruth(f)
        for seg, bnd in zip(gt.segmentations, gt.boundaries, strict=True):
            assert (thin(seg2bdry(seg)) == bnd).all(), f.name


def test_max_f_interpolates_between_thresholds():
    t = np.array([0.25, 0.75])
    r = np.array([1.0, 0.0])
    p = np.array([0.0, 1.0])
    bt, br, bp, bf = max_f(t, r, p)
    assert bf == pytest.approx(0.5, abs=1e-3) and bt == pytest.approx(0.5, abs=0.01)
    assert br == pytest.approx(0.5, abs=0.01) and bp == pytest.approx(0.5, abs=0.01)


def test_average_precision_is_zero_outside_the_measured_recall():
    assert average_precision(np.array([0.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.01)
    assert average_precision(np.array([0.0, 0.5]), np.array([1.0, 1.0])) == pytest.approx(0.51)
    assert average_precision(np.array([0.3, 0.3]), np.array([1.0, 0.5])) == 0.0


def test_perfect_prediction_scores_one_and_ois_uses_first_best():
    gt = np.zeros((1, 30, 30), bool)
    gt[0, 15, 3:27] = True
    pb = gt[0] * 0.9
    c = image_counts(EdgeInput.soft(pb, 9), gt)
    res = BoundaryResult(["a"], default_thresholds(9), c[None])
    assert res.ods["f"] == pytest.approx(1.0) and res.ois["f"] == pytest.approx(1.0)
    assert set(reference_files(res)) == {"eval_bdry.txt", "eval_bdry_img.txt", "eval_bdry_thr.txt"}
    with pytest.raises(ValueError, match="ground truth"):
        image_counts(EdgeInput.soft(pb[:10], 9), gt)


# Parity: the reference's correspondPixels solves the assignment with a cost-scaling solver
# on a graph whose outlier edges are drawn at random, and picks arbitrarily among matchings
# of equal cost; it even returns a few pixels fewer than the maximum matching at times
# (its test_1/test_2/test_3 differ from each other by ~1e-4 on the same boundaries). We
# solve the same problem exactly, so figures agree to ~1e-3, well inside 0.005.
CASES = {"test_1": "ucm2", "test_2": "png", "test_3": "segs", "test_4": "segs"}


@pytest.mark.parametrize("test", sorted(CASES))
def test_parity_with_reference_outputs(bsds_root, tmp_path, test):
    from perpixel.tasks.edges.bsds.bench import boundary_bench

    bench = bsds_root / "bench"
    res = boundary_bench(
        bench / CASES[test],
        bench / "groundTruth",
        tmp_path,
        thresholds=5,
        progress=False,
        regions=False,
    )
    for name in ("eval_bdry.txt", "eval_bdry_img.txt", "eval_bdry_thr.txt"):
        ours = np.loadtxt(tmp_path / name, ndmin=2)
        ref = np.loadtxt(bench / test / name, ndmin=2)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() < 0.005, (test, name)
    assert res.ods["f"] == pytest.approx(0.7046, abs=0.005)
