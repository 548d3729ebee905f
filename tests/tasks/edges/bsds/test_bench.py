"""`perpixel edges bench`: input kinds, pairing, errors, output files, CLI."""

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image

from perpixel.cli import main
from perpixel.errors import DataError
from perpixel.tasks.edges.bsds.bench import boundary_bench, pair_files, read_prediction


def make_gt(folder, name="a", shape=(40, 50)):
    """A ground-truth .mat with two annotators: two regions split at row 20 / 21."""
    folder.mkdir(parents=True, exist_ok=True)
    cells = np.empty((1, 2), dtype=object)
    for k, row in enumerate((20, 21)):
        seg = np.ones(shape, np.uint16)
        seg[row:] = 2
        bnd = np.zeros(shape, np.uint8)
        bnd[row - 1] = 1
        cells[0, k] = {"Segmentation": seg, "Boundaries": bnd}
    scipy.io.savemat(folder / f"{name}.mat", {"groundTruth": cells})
    return folder


def test_read_prediction_tells_kinds_apart(tmp_path):
    h, w = 12, 10
    soft = np.linspace(0, 1, h * w).reshape(h, w)
    Image.fromarray((soft * 255).round().astype(np.uint8)).save(tmp_path / "s.png")
    np.save(tmp_path / "b.npy", soft > 0.5)
    np.save(tmp_path / "u.npy", np.zeros((2 * h + 1, 2 * w + 1)))
    np.save(tmp_path / "g.npy", np.ones((3, h, w), np.int32))
    scipy.io.savemat(tmp_path / "m.mat", {"ucm2": np.zeros((2 * h + 1, 2 * w + 1))})
    kinds = {
        f: read_prediction(tmp_path / f, (h, w), 9)[1]
        for f in ("s.png", "b.npy", "u.npy", "g.npy", "m.mat")
    }
    assert kinds == {
        "s.png": "soft",
        "b.npy": "soft",
        "u.npy": "ucm2",
        "g.npy": "segs",
        "m.mat": "ucm2",
    }
    inp, _, _ = read_prediction(tmp_path / "s.png", (h, w), 9)
    assert inp.bmaps.shape == (9, h, w) and inp.bmaps[0].sum() > inp.bmaps[-1].sum()
    with pytest.raises(DataError, match="s.png.*ground truth needs"):
        read_prediction(tmp_path / "s.png", (h + 1, w), 9)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png.*cannot read"):
        read_prediction(tmp_path / "bad.png", (h, w), 9)
    np.save(tmp_path / "neg.npy", soft - 1)
    with pytest.raises(DataError, match=r"neg.npy.*\[0, 1\]"):
        read_prediction(tmp_path / "neg.npy", (h, w), 9)


def test_pair_files_names_missing_predictions(tmp_path):
    gt = make_gt(tmp_path / "gt", "a")
    make_gt(gt, "b")
    (tmp_path / "pred").mkdir()
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "pred" / "a.png")
    with pytest.raises(DataError, match="no prediction for 1 of 2.*b"):
        pair_files(tmp_path / "pred", gt)
    with pytest.raises(DataError, match="no ground-truth"):
        pair_files(tmp_path / "pred", tmp_path / "pred")


def test_bench_perfect_and_shifted_predictions(tmp_path):
    gt = make_gt(tmp_path / "gt")
    pred = tmp_path / "pred"
    pred.mkdir()
    p = np.zeros((40, 50), np.uint8)
    p[19] = 255  # annotator 1 exactly; annotator 2 is 1 px away (reach 0.0075 x 64 = 0.48 px)
    Image.fromarray(p).save(pred / "a.png")
    res = boundary_bench(pred, gt, tmp_path / "out", thresholds=5, progress=False, workers=2)
    assert res.ods["precision"] == pytest.approx(1.0)
    assert res.ods["recall"] == pytest.approx(0.5)
    res = boundary_bench(pred, gt, None, thresholds=5, max_dist=0.02, progress=False)
    assert res.ods["f"] == pytest.approx(1.0)
    files = {f.name for f in (tmp_path / "out").iterdir()}
    assert {
        "eval_bdry.txt",
        "eval_bdry_img.txt",
        "eval_bdry_thr.txt",
        "eval_bdry.json",
        "pr_curve.png",
    } <= files
    assert len(np.loadtxt(tmp_path / "out" / "eval_bdry_thr.txt")) == 5


def test_cli_bench_on_reference_inputs(bsds_root, tmp_path, capsys):
    bench = bsds_root / "bench"
    out = tmp_path / "out"
    assert main(
        [
            "edges",
            "bench",
            str(bench / "ucm2"),
            str(bench / "groundTruth"),
            "--out",
            str(out),
            "--thresholds",
            "5",
            "--no-progress",
        ]
    ) in (0, None)
    text = capsys.readouterr().out
    assert "ODS F 0.70" in text and "covering" in text
    d = json.loads((out / "eval_bdry.json").read_text())
    ref = np.loadtxt(bench / "test_1" / "eval_bdry.txt")
    assert abs(d["ods"]["f"] - ref[3]) < 0.005 and abs(d["ap"] - ref[7]) < 0.005
    ref_cover = np.loadtxt(bench / "test_1" / "eval_cover.txt")
    assert np.abs(np.loadtxt(out / "eval_cover.txt") - ref_cover).max() < 0.005


def test_cli_bench_error_is_one_line(tmp_path, capsys):
    code = main(["edges", "bench", str(tmp_path / "nope"), str(tmp_path), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "folder not found" in err and "Traceback" not in err


def test_cli_plot_draws_saved_results(tmp_path, capsys):
    gt = make_gt(tmp_path / "gt")
    pred = tmp_path / "pred"
    pred.mkdir()
    Image.fromarray(np.full((40, 50), 128, np.uint8)).save(pred / "a.png")
    boundary_bench(pred, gt, tmp_path / "r1", thresholds=3, progress=False)
    out = tmp_path / "pr.png"
    main(["edges", "plot", str(tmp_path / "r1"), "--out", str(out)])
    assert Image.open(out).size[0] > 100
    assert main(["edges", "plot", str(tmp_path / "gt"), "--out", str(out)]) == 2
    assert "no eval_bdry.json" in capsys.readouterr().err
