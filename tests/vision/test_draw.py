"""Every drawing function makes a non-empty PNG, alone or on a given axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minidl import Tensor  # noqa: E402
from minidl.data.shapes import SKELETON, ShapesDataset, StickFigures  # noqa: E402
from minidl.vision import draw  # noqa: E402


@pytest.fixture(scope="module")
def sample():
    return ShapesDataset(2, 64, min_objects=2, seed=0)[0]


def _save(fig, path):
    fig.savefig(path)
    plt.close(fig)
    assert path.exists() and path.stat().st_size > 1000  # a real picture, not an empty file


def test_boxes_masks_semantic(sample, tmp_path):
    image, t = sample
    _save(draw.draw_boxes(image, t["boxes"], t["labels"], scores=np.linspace(1, 0.5, len(
        t["boxes"])), class_names=ShapesDataset.classes, title="boxes"), tmp_path / "b.png")
    _save(draw.draw_masks(Tensor(image), t["masks"], t["labels"]), tmp_path / "m.png")
    _save(draw.draw_semantic(image, t["semantic"]), tmp_path / "s.png")
    _save(draw.show_image(np.moveaxis(image, 0, -1)), tmp_path / "i.png")


def test_layers_on_one_axes(sample, tmp_path):
    image, t = sample
    fig, axes = plt.subplots(1, 2)
    assert draw.draw_boxes(image, t["boxes"], ax=axes[0]) is fig
    assert draw.draw_boxes(None, t["boxes"] + 2, ax=axes[0], linestyle="--") is fig
    draw.draw_pr_curve([1, 0.5, 2 / 3], [0.5, 0.5, 1.0], ax=axes[1], label="class 1")
    _save(fig, tmp_path / "layers.png")


def test_keypoints(tmp_path):
    image, t = StickFigures(1, 64, seed=0)[0]
    fig = draw.draw_keypoints(image, t["keypoints"], SKELETON,
                              names=StickFigures.keypoint_names)
    _save(fig, tmp_path / "k.png")


def test_anchors_and_matches(sample, tmp_path):
    image, t = sample
    centres = np.stack(np.meshgrid(np.arange(8, 64, 16), np.arange(8, 64, 16)), -1).reshape(-1, 2)
    anchors = np.concatenate([centres - 10, centres + 10], 1).astype(float)
    _save(draw.draw_anchors(image, anchors, max_anchors=10), tmp_path / "a.png")
    matches = np.full(len(anchors), -1)
    matches[:3] = [0, 1, -2]
    _save(draw.draw_matches(image, anchors, matches, t["boxes"]), tmp_path / "match.png")
    with pytest.raises(ValueError, match="ground truth 5"):
        draw.draw_matches(image, anchors[:1], [5], t["boxes"])


def test_roi_bins(tmp_path):
    fmap = np.arange(64, dtype=np.float32).reshape(8, 8)
    box = (1.3, 0.6, 6.2, 5.1)
    _save(draw.draw_roi_bins(fmap, box, 2, mode="pool"), tmp_path / "pool.png")
    _save(draw.draw_roi_bins(fmap, box, 2, mode="align", aligned=True), tmp_path / "align.png")
    # RoIPool rounds the box to whole cells: x 1..6, y 1..5 -> w 6, h 5; bins of 3 cells
    # across and (0..3, 2..5) down (floor / ceil of 2.5)
    assert draw.roi_pool_bins(box, 2) == [(1, 1, 4, 4), (4, 1, 7, 4), (1, 3, 4, 6), (4, 3, 7, 6)]
    # RoIAlign keeps the exact box: bins of 4.9 / 2 by 4.5 / 2, 2 x 2 samples each
    bins, points = draw.roi_align_samples(box, 2, sampling_ratio=2)
    np.testing.assert_allclose(bins[0], (1.3, 0.6, 1.3 + 2.45, 0.6 + 2.25))
    assert points.shape == (16, 2)
    np.testing.assert_allclose(points[0], (1.3 + 2.45 / 4, 0.6 + 2.25 / 4))


def test_bad_images_and_boxes_are_clear_errors():
    with pytest.raises(ValueError, match="expected an image"):
        draw.show_image(np.zeros((2, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"boxes must be \[n, 4\]"):
        draw.draw_boxes(np.zeros((8, 8)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        draw.draw_boxes(np.zeros((8, 8)), np.zeros((2, 4)), labels=[1])
    with pytest.raises(ValueError, match="masks must be"):
        draw.draw_masks(np.zeros((3, 8, 8)), np.zeros((1, 7, 8), bool))
    plt.close("all")


def _bilinear(fmap, x, y):
    """Bilinear read of fmap at (x, y) with cell (i, j) at (j, i); points inside the map."""
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    lx, ly = x - x0, y - y0
    return ((1 - ly) * ((1 - lx) * fmap[y0, x0] + lx * fmap[y0, x0 + 1])
            + ly * ((1 - lx) * fmap[y0 + 1, x0] + lx * fmap[y0 + 1, x0 + 1]))


@pytest.mark.parametrize("aligned", [False, True])
def test_drawn_bins_are_the_bins_the_roi_ops_use(aligned):
    from minidl.vision import roi_align, roi_pool

    fmap = np.random.default_rng(0).standard_normal((10, 10)).astype(np.float32)
    box = np.array([12.0, 9.0, 58.0, 47.0])  # image pixels, stride 8 -> inside the map
    pooled = roi_pool(Tensor(fmap[None, None]), [box[None]], 3, spatial_scale=1 / 8).data[0, 0]
    bins = draw.roi_pool_bins(box, 3, 1 / 8)
    want = np.array([fmap[y0:y1, x0:x1].max() for x0, y0, x1, y1 in bins]).reshape(3, 3)
    np.testing.assert_allclose(pooled, want)
    out = roi_align(Tensor(fmap[None, None]), [box[None]], 3, spatial_scale=1 / 8,
                    sampling_ratio=2, aligned=aligned).data[0, 0]
    _, points = draw.roi_align_samples(box, 3, 1 / 8, sampling_ratio=2, aligned=aligned)
    samples = np.array([_bilinear(fmap, x, y) for x, y in points]).reshape(3, 3, 4)
    np.testing.assert_allclose(out, samples.mean(-1), rtol=1e-5, atol=1e-6)
