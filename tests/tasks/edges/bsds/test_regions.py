"""Region benchmarks: hand-computed cases and parity with the BSDS reference outputs."""

import json

import numpy as np
import pytest

from perpixel.tasks.edges.bsds.files import GroundTruth, read_groundtruth, read_segs, read_ucm2
from perpixel.tasks.edges.bsds.regions import (
    evaluate_image,
    format_region_results,
    region_bench,
    segment_ucm2,
    ucm_thresholds,
    write_region_results,
)

REGION_FILES = [
    "eval_cover.txt",
    "eval_cover_img.txt",
    "eval_cover_th.txt",
    "eval_RI_VOI.txt",
    "eval_RI_VOI_thr.txt",
]


def _gt(*segs) -> GroundTruth:
    s = np.stack([np.asarray(x, dtype=np.int32) for x in segs])
    return GroundTruth(boundaries=np.zeros(s.shape, bool), segmentations=s)


def _parse(text: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in text.splitlines()])


def test_identical_segmentation_is_perfect():
    rng = np.random.default_rng(0)
    seg = rng.integers(1, 6, size=(12, 9)).astype(np.int32)
    im = evaluate_image([seg], _gt(seg, seg))
    assert im.cnt_r[0] == pytest.approx(im.sum_r[0]) == 2 * seg.size
    assert im.cnt_p[0] == pytest.approx(im.sum_p[0])
    assert im.ri[0] == pytest.approx(1.0)
    assert im.voi[0] == pytest.approx(0.0, abs=1e-12)


def test_hand_computed_two_by_two():
    # S splits top/bottom, G splits left/right: of the 6 pixel pairs only the 2 diagonal
    # ones agree (different in both), RI = 1/3; S and G are independent, one bit each, VOI = 2;
    # every region overlaps its best match in 1 pixel of a union of 3: covering 1/3.
    seg = np.array([[1, 1], [2, 2]])
    im = evaluate_image([seg], _gt([[1, 2], [1, 2]]))
    assert im.ri[0] == pytest.approx(1 / 3)
    assert im.voi[0] == pytest.approx(2.0)
    assert im.cnt_r[0] / im.sum_r[0] == pytest.approx(1 / 3)
    assert im.cnt_p[0] / im.sum_p[0] == pytest.approx(1 / 3)

    # one region against the left/right split: RI 2/6, VOI = H(G) = 1, Jaccard 2/4
    im = evaluate_image([np.ones((2, 2), int)], _gt([[1, 2], [1, 2]]))
    assert im.ri[0] == pytest.approx(1 / 3)
    assert im.voi[0] == pytest.approx(1.0)
    assert im.cnt_r[0] / im.sum_r[0] == pytest.approx(0.5)
    assert im.cnt_p[0] / im.sum_p[0] == pytest.approx(0.5)


def test_annotators_are_averaged_and_best_threshold_per_region():
    left_right = [[1, 2], [1, 2]]
    segs = [np.array(left_right), np.ones((2, 2), int)]
    im = evaluate_image(segs, _gt(left_right, np.ones((2, 2))))
    # RI against (identical, one region): (1 + 1/3)/2 for S1 and (1/3 + 1)/2 for S2
    np.testing.assert_allclose(im.ri, [2 / 3, 2 / 3])
    # covering G -> S: S1 covers G1 fully and G2 at 1/2; S2 the reverse; best per region: all
    np.testing.assert_allclose(im.cnt_r / im.sum_r, [0.75, 0.75])
    assert im.cnt_r_best == pytest.approx(im.sum_r[0])
    np.testing.assert_array_equal(im.thresholds, [1, 2])


def test_segment_ucm2_splits_at_its_boundary_value():
    # a 2x2 image whose left and right columns are parted by a contour of strength 0.5
    ucm2 = np.zeros((5, 5))
    ucm2[:, 2] = 0.5
    low = segment_ucm2(ucm2, 0.25)
    assert low.shape == (2, 2)
    assert low[0, 0] == low[1, 0] != low[0, 1] == low[1, 1]
    assert len(np.unique(segment_ucm2(ucm2, 0.75))) == 1
    np.testing.assert_allclose(ucm_thresholds(3), [0.25, 0.5, 0.75])
    im = evaluate_image(ucm2, _gt([[1, 2], [1, 2]]), nthresh=3)
    np.testing.assert_allclose(im.ri, [1.0, 1 / 3, 1 / 3])


def test_bad_inputs_are_refused():
    gt = _gt([[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="shape"):
        evaluate_image([np.ones((3, 2), int)], gt)
    with pytest.raises(ValueError, match="integer"):
        evaluate_image([np.full((2, 2), 0.5)], gt)
    with pytest.raises(ValueError, match="thresholds"):
        region_bench(
            {"a": [np.ones((2, 2), int)], "b": [np.ones((2, 2), int)] * 2}, {"a": gt, "b": gt}
        )


def test_write_results_and_workers(tmp_path):
    rng = np.random.default_rng(1)
    gts = {f"im{i}": _gt(*rng.integers(1, 4, size=(3, 6, 5))) for i in range(3)}
    inputs = {n: list(rng.integers(1, 5, size=(4, 6, 5))) for n in gts}
    one = region_bench(inputs, gts)
    two = region_bench(inputs, gts, workers=2)
    assert format_region_results(one) == format_region_results(two)
    paths = write_region_results(one, tmp_path)
    assert sorted(p.name for p in paths) == sorted(REGION_FILES + ["eval_regions.json"])
    cover = _parse((tmp_path / "eval_cover.txt").read_text())[0]
    data = json.loads((tmp_path / "eval_regions.json").read_text())
    assert data["covering"]["ods"] == pytest.approx(cover[1], abs=1e-5)
    assert data["covering"]["ois"] >= data["covering"]["ods"] - 1e-6
    assert data["covering"]["best"] >= data["covering"]["ois"] - 1e-6
    assert len(data["images"]) == 3


@pytest.mark.parametrize("test,kind", [("test_1", "ucm2"), ("test_4", "segs"), ("test_5", "segs")])
def test_parity_with_reference(bsds_root, test, kind):
    """Every figure of the reference's region files, to the printed precision.

    Exact agreement is expected: the region measures have no arbitrary choices (unlike
    the boundary matcher), and per-image figures are rounded as the reference's files are.
    """
    bench = bsds_root / "bench"
    names = sorted(p.stem for p in (bench / "groundTruth").glob("*.mat"))
    gts = {n: read_groundtruth(bench / "groundTruth" / f"{n}.mat") for n in names}
    read = read_ucm2 if kind == "ucm2" else read_segs
    inputs = {n: read(bench / kind / f"{n}.mat") for n in names}
    texts = format_region_results(region_bench(inputs, gts, nthresh=5))
    for name in REGION_FILES:
        ref = (bench / test / name).read_text()
        ours, theirs = _parse(texts[name]), _parse(ref)
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=5e-3, err_msg=name)
        assert texts[name] == ref, name
