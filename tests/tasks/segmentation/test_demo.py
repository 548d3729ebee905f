"""The demo's accuracy promise (slow: ~10 minutes on 2 CPU cores; `make test-slow`)."""

import json
import os

import pytest
import torch

from perpixel.cli import main


@pytest.mark.slow
def test_demo_meets_targets(tmp_path, capsys):
    torch.set_num_threads(os.cpu_count() or 1)  # a timing-sensitive run: use every core
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["unet"]["miou"] >= 0.80, m["unet"]["miou"]
    assert m["linear"]["miou"] <= 0.40, m["linear"]["miou"]
    assert (out / "report.html").is_file()
    text = capsys.readouterr().out
    assert "report.html" in text and "unet" in text
