"""Tests for perpixel.data.panoptic: the sample format's segments, crowd and void rules."""

import numpy as np
import pytest

from perpixel.data.panoptic import from_segments, id_to_rgb, rgb_to_id, to_segments, void_unassigned
from perpixel.data.synthetic import SYNTHETIC, generate

SEM = np.array([[0, 0, 4, 4], [0, 1, 4, 4], [5, 5, 255, 1]])
INS = np.array([[3, 0, 1, 1], [0, 0, 2, 2], [0, 0, 0, 7]])


def test_to_segments_one_per_stuff_class_and_per_instance_crowd_for_unnumbered_things():
    ids, segs = to_segments(SEM, INS, [4, 5], 255)
    assert ids[2, 2] == 0  # void
    # stuff 0 ignores its instance id 3: one segment; stuff 1 is one segment in two places
    assert len({ids[0, 0], ids[0, 1], ids[1, 0]}) == 1
    assert ids[1, 1] == ids[2, 3]
    assert ids[0, 2] != ids[1, 2]  # two instances of class 4
    crowd = segs[ids[2, 0]]
    assert crowd.category == 5 and crowd.iscrowd
    assert sorted((s.category, s.iscrowd) for s in segs.values()) == [
        (0, False), (1, False), (4, False), (4, False), (5, True)
    ]  # fmt: skip


def test_from_segments_inverts_to_segments_up_to_renumbering():
    for i in range(4):
        s = generate(3, i, height=48, width=64)
        ids, segs = to_segments(s.semantic, s.instances, SYNTHETIC.thing_ids, 255)
        sem, ins = from_segments(ids, segs, 255, SYNTHETIC.thing_ids)
        assert np.array_equal(sem, s.semantic)
        pairs = {(int(a), int(b)) for a, b in zip(ins.ravel(), s.instances.ravel(), strict=True)}
        assert len(pairs) == len(np.unique(s.instances))  # a bijection of instance ids


def test_void_unassigned_voids_only_thing_pixels_without_instance():
    out = void_unassigned(SEM, INS, [4, 5], 255)
    assert (out[2, :2] == 255).all()  # class 5, instance 0
    assert out[0, 1] == 0 and out[0, 2] == 4


@pytest.mark.parametrize("seed", range(3))
def test_coco_png_id_encoding_round_trips(seed):
    ids = np.random.default_rng(seed).integers(0, 2**24, (7, 9))
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (7, 9, 3)
    assert np.array_equal(rgb_to_id(rgb), ids)
    assert rgb_to_id(np.array([[[1, 2, 3]]], np.uint8))[0, 0] == 1 + 2 * 256 + 3 * 65536
