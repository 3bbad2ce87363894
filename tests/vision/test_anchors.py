"""Anchors (Faster R-CNN), SSD default boxes and YOLO v1 grid assignment."""

import math

import numpy as np
import pytest

from minidl.vision.anchors import AnchorGenerator, ssd_default_boxes, ssd_scales, yolo_grid_assign


def test_cell_anchors_by_hand():
    # size 32: ratio 0.5 -> w = 32 sqrt(2) = 45.25, h = 22.63 -> rounded halves (23, 11)
    gen = AnchorGenerator(sizes=((32,),), aspect_ratios=((0.5, 1.0, 2.0),))
    np.testing.assert_array_equal(gen.cell_anchors[0], [[-23, -11, 23, 11], [-16, -16, 16, 16],
                                                        [-11, -23, 11, 23]])


def test_ratios_outer_sizes_inner_and_area():
    gen = AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    base = gen.cell_anchors[0].astype(np.float64)
    w, h = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    sizes = np.tile([16, 32, 64], 3)
    ratios = np.repeat([0.5, 1.0, 2.0], 3)
    np.testing.assert_allclose(h / w, ratios, rtol=0.1)  # rounding to whole pixels
    np.testing.assert_allclose(np.sqrt(w * h), sizes, rtol=0.05)
    assert gen.num_anchors_per_location() == [9]


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_grid_anchors_positions(offset):
    gen = AnchorGenerator(sizes=((8,), (16, 24)), aspect_ratios=((1.0,),), offset=offset)
    levels = gen.grid_anchors([(3, 4), (2, 2)], [(8, 8), (16, 16)])
    assert [lv.shape for lv in levels] == [(12, 4), (8, 4)]
    centres = (levels[0][:, :2] + levels[0][:, 2:]) / 2
    i, j = np.divmod(np.arange(12), 4)  # position-major, row by row
    np.testing.assert_allclose(centres, np.stack([(j + offset) * 8, (i + offset) * 8], 1))
    # level 1 has 2 anchors per position, anchors inner
    np.testing.assert_allclose(levels[1][1] - levels[1][0], [-4, -4, 4, 4])


def test_torchvision_interface_and_anchors_for():
    gen = AnchorGenerator(sizes=((16,), (32,)), aspect_ratios=((0.5, 1.0, 2.0),))
    images = np.zeros((2, 3, 64, 48))
    feats = [np.zeros((2, 8, 8, 6)), np.zeros((2, 8, 4, 3))]
    out = gen(images, feats)
    assert len(out) == 2 and out[0].shape == ((8 * 6 + 4 * 3) * 3, 4)
    np.testing.assert_array_equal(out[1], gen.anchors_for((64, 48), [(8, 6), (4, 3)]))
    # stride of level 1 is 16: the anchor at position (1, 2) is centred at (32, 16)
    first_of_level1 = 8 * 6 * 3
    row = out[0][first_of_level1 + (1 * 3 + 2) * 3 + 1]
    np.testing.assert_allclose((row[:2] + row[2:]) / 2, [32, 16])


def test_non_square_strides_move_x_by_the_x_stride():
    # image 64 x 96 (H x W), feature map 16 x 12 -> strides (s_y, s_x) = (4, 8): the anchor
    # at row i, column j is centred at (x, y) = (8 j, 4 i) (offset 0), so mixing up the two
    # strides (or H and W) moves every anchor
    gen = AnchorGenerator(sizes=((8,),), aspect_ratios=((1.0,),))
    anchors = gen.anchors_for((64, 96), [(16, 12)])
    assert anchors.shape == (16 * 12, 4)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    i, j = np.divmod(np.arange(16 * 12), 12)
    np.testing.assert_allclose(centres, np.stack([8 * j, 4 * i], 1))
    np.testing.assert_array_equal(gen.grid_anchors([(16, 12)], [(4, 8)])[0], anchors)


def test_anchor_generator_errors():
    with pytest.raises(ValueError, match="2 levels of sizes but 3 of aspect ratios"):
        AnchorGenerator(sizes=((8,), (16,)), aspect_ratios=((1.0,), (1.0,), (2.0,)))
    with pytest.raises(ValueError, match="must be positive"):
        AnchorGenerator(sizes=((0,),))
    with pytest.raises(ValueError, match="expected 1 feature maps"):
        AnchorGenerator().grid_anchors([(2, 2), (1, 1)], [(4, 4), (8, 8)])


def test_ssd_scales_formula():
    s = ssd_scales(6, 0.2, 0.9)
    np.testing.assert_allclose(s, [0.2 + 0.14 * k for k in range(6)] + [1.0])
    assert ssd_scales(1) == [0.2, 1.0]


def test_ssd_default_boxes():
    boxes = ssd_default_boxes([4, 2], aspect_ratios=[(2,), (2, 3)], s_min=0.2, s_max=0.9)
    assert boxes.shape == (16 * 4 + 4 * 6, 4)
    first_cell = boxes[:4]
    np.testing.assert_allclose(first_cell[:, :2], 0.125)  # centre ((0 + 0.5) / 4, ...)
    s, s_next = 0.2, 0.9
    r = math.sqrt(2)
    np.testing.assert_allclose(first_cell[:, 2:], [[s, s], [math.sqrt(s * s_next)] * 2,
                                                   [s * r, s / r], [s / r, s * r]], rtol=1e-6)
    # the second cell of layer 1 is one column to the right
    np.testing.assert_allclose(boxes[4, :2], [0.375, 0.125])
    # layer 2 (scale 0.9, next 1.0): clipped to 1 where sqrt(3) * 0.9 > 1
    layer2 = boxes[64:70]
    np.testing.assert_allclose(layer2[:, :2], 0.25)
    np.testing.assert_allclose(layer2[1, 2], math.sqrt(0.9), rtol=1e-6)
    assert layer2[:, 2:].max() == 1.0


def test_ssd_default_boxes_errors():
    with pytest.raises(ValueError, match="ssd_default_boxes: 2 positive feature-map sizes"):
        ssd_default_boxes([4, 2], aspect_ratios=[(2,)])


def test_yolo_grid_assign():
    boxes = np.array([[0.0, 0.0, 20.0, 10.0],     # centre (10, 5)
                      [50.0, 60.0, 70.0, 70.0],   # centre (60, 65)
                      [60.0, 60.0, 70.0, 70.0]])  # centre (65, 65) = bottom-right corner
    g = yolo_grid_assign(boxes, (65, 65), grid_size=5)  # cells of 13 px
    np.testing.assert_array_equal(g.col, [0, 4, 4])
    np.testing.assert_array_equal(g.row, [0, 4, 4])
    np.testing.assert_allclose(g.offset_x, [10 / 13, 60 / 13 - 4, 1.0])
    np.testing.assert_allclose(g.offset_y, [5 / 13, 1.0, 1.0])
    np.testing.assert_allclose(g.width, [20 / 65, 20 / 65, 10 / 65])
    assert yolo_grid_assign(np.zeros((0, 4)), (10, 10), 7).row.shape == (0,)
    # a non-square image, H = 40, W = 80, grid 4: cells are 10 px tall and 20 px wide.
    # box (10, 2, 50, 30): centre (30, 16), 40 x 28 px
    #   u = 30 / 80 * 4 = 1.5 -> col 1, offset .5;  v = 16 / 40 * 4 = 1.6 -> row 1, offset .6
    #   width = 40 / 80 = .5, height = 28 / 40 = .7
    g = yolo_grid_assign(np.array([[10.0, 2, 50, 30]]), (40, 80), grid_size=4)
    assert (g.row.tolist(), g.col.tolist()) == ([1], [1])
    np.testing.assert_allclose([g.offset_x[0], g.offset_y[0], g.width[0], g.height[0]],
                               [0.5, 0.6, 0.5, 0.7])
    with pytest.raises(ValueError, match="centre outside"):
        yolo_grid_assign(np.array([[70.0, 0, 80, 10]]), (65, 65), 5)
