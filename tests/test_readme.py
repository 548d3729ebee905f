"""The README's examples that a user pastes: they are run here, so that they cannot rot."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perpixel.data.synthetic import SYNTHETIC
from perpixel.engine.export import export_onnx
from perpixel.models import build_model
from perpixel.models.edges import FusedLogits
from perpixel.tasks.segmentation.module import SegmentationTask

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    """The text of the README's `## title` section."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def onnx_example() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", section("ONNX export"), re.M | re.S)
    found = [b for b in blocks if "onnxruntime" in b]
    assert len(found) == 1, "the ONNX export section should hold one onnxruntime example"
    return found[0]


def run_example(folder: Path, check: str) -> str:
    """Run the README's example in `folder` (holding model.onnx and photo.jpg), then `check`."""
    code = onnx_example() + "\n" + check
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def photo(tmp_path):
    """photo.jpg, 45 x 37: a size the exported model was not traced at, not a multiple of 8."""
    rgb = np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.jpg")
    return tmp_path


def test_onnx_example_segmentation(photo, tiny_config):
    torch.manual_seed(0)
    task = SegmentationTask(tiny_config(photo / "run"), SYNTHETIC.to_dict())
    export_onnx(task.export_model(), photo / "model.onnx")
    out = run_example(
        photo,
        "assert x.dtype == np.float32 and x.shape == (1, 3, 37, 45)\n"
        "assert 0 <= x.min() and x.max() <= 1\n"
        "print(logits.shape, labels.shape, labels.min(), labels.max())",
    )
    shape, label_shape, low, high = re.findall(r"\([^)]*\)|\d+", out)
    assert shape == f"(1, {SYNTHETIC.num_classes}, 37, 45)" and label_shape == "(37, 45)"
    assert 0 <= int(low) <= int(high) < SYNTHETIC.num_classes


def test_onnx_example_edges(photo):
    """The edges line of the example: fused logits (1, 1, H, W), sigmoid in [0, 1]."""
    torch.manual_seed(0)
    model = build_model({"name": "unet_edges", "depth": 2, "base_channels": 4})
    export_onnx(FusedLogits(model), photo / "model.onnx")
    edges = re.search(r"edges: (.*)$", onnx_example(), re.M)
    assert edges, "the example should say how to read an edge model's output"
    out = run_example(
        photo, f"prob = {edges.group(1).strip()}\nprint(logits.shape, prob.min(), prob.max())"
    )
    shape, rest = out.split(")", 1)
    low, high = map(float, rest.split())
    assert shape + ")" == "(1, 1, 37, 45)" and 0.0 <= low <= high <= 1.0


def test_architectures_example_runs():
    blocks = re.findall(
        r"^```python\n(.*?)^```", section("Segmentation architectures"), re.M | re.S
    )
    assert len(blocks) == 1
    scope: dict = {}
    exec(blocks[0], scope)  # noqa: S102 - the README's own example
    assert scope["logits"].shape == (1, 11, 360, 480)


def test_panoptic_example_runs():
    blocks = re.findall(
        r"^```python\n(.*?)^```", section("Instances and panoptic segmentation"), re.M | re.S
    )
    assert len(blocks) == 1
    scope: dict = {}
    exec(blocks[0], scope)  # noqa: S102 - the README's own example
    m = scope["m"]
    for key in ("pq", "miiou", "ap", "miou", "category_miou", "per_class_pq"):
        assert key in m
    assert 0.0 <= m["miou"] <= 1.0
