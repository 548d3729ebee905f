"""Tests for perpixel.viz.panoptic: instance shades and outlines, the picture grid."""

import numpy as np

from perpixel.data.synthetic import SYNTHETIC, generate
from perpixel.viz.panoptic import panoptic_panel, plot_panoptic


def test_touching_instances_of_one_class_are_outlined_and_shaded_apart():
    sem = np.full((6, 8), 4)  # all "disc"
    ins = np.zeros((6, 8), int)
    ins[:, :4], ins[:, 4:] = 1, 2
    pic = panoptic_panel(sem, ins, SYNTHETIC)
    assert pic.shape == (6, 8, 3) and pic.dtype == np.uint8
    assert (pic[:, 4] == 255).all()  # the outline where instance 2 meets instance 1
    assert not (pic[:, 0] == pic[:, 7]).all()  # two shades of one class colour
    stuff = panoptic_panel(np.zeros((3, 3), int), np.zeros((3, 3), int), SYNTHETIC)
    assert (stuff == SYNTHETIC.colors[0]).all()  # stuff: the flat class colour, no outline


def test_plot_panoptic_writes_a_png(tmp_path):
    s = generate(0, 0, height=40, width=48)
    rows = [
        (s.image, (s.semantic, s.instances), (s.semantic, s.instances)),
        (s.image, None, (s.semantic, s.instances)),
    ]
    path = plot_panoptic(rows, SYNTHETIC, tmp_path / "p.png")
    assert path.is_file() and path.stat().st_size > 1000
