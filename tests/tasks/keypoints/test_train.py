"""MagicPoint learns corners from synthetic shapes: a short run gains far over its untrained
self; a longer one (slow) detects them better than Harris on the same images, scored by the
same code."""

from __future__ import annotations

import pytest

from perpixel.tasks.keypoints.evaluation import classic_methods, network_method, shapes_ap
from perpixel.tasks.keypoints.module import KeypointTask
from perpixel.tasks.keypoints.predict import KeypointDetector
from perpixel.tasks.keypoints.train import train

from .conftest import kp_config

NET = {"name": "magicpoint", "channels": [16, 16, 32, 32], "head_channels": 32, "batch_norm": True}
PLAIN = {"pairs": False, "photometric_train": False, "homographic_train": False, "num_val": 16}


def run(tmp_path, **data) -> tuple[dict, dict]:
    conf = kp_config(tmp_path, data={**PLAIN, **data}, model=NET, optim={"lr": 0.003})
    trained = KeypointDetector(KeypointTask.load(train(conf)["last"]))
    return conf, {
        "trained": network_method("trained", trained),
        "untrained": network_method("untrained", KeypointDetector(KeypointTask(conf).eval())),
    }


def test_short_run_learns_corners(tmp_path):
    conf, nets = run(tmp_path, num_train=3200, num_test=40)  # 200 steps at 48x64
    ap = shapes_ap(list(nets.values()), conf["data"], noise=False)
    assert ap["trained"] > ap["untrained"] + 0.3, ap


@pytest.mark.slow
def test_magicpoint_beats_harris(tmp_path):
    conf, nets = run(
        tmp_path, shape=[120, 160], num_train=19200, batch_size=32, num_test=100
    )  # 600 steps, about 10 minutes on 2 cores
    classic, _ = classic_methods(conf["detect"])
    harris = [m for m in classic if m.name == "harris"]
    ap = shapes_ap([nets["trained"], *harris], conf["data"], noise=False)
    assert ap["trained"] > ap["harris"], ap
