"""Segmentation networks: convolutionize, the bilinear transposed conv, FCN and U-Net shapes and
skips, training lowers the loss, scores of known predictions, the data arrays."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import DataLoader, TensorDataset
from minidl.data.shapes import ShapesDataset
from minidl.optim import Adam
from minidl.vision.models import (
    FCN,
    Backbone,
    UNet,
    bilinear_upsampling_weight,
    convolutionize,
    evaluate_segmentation,
    predict_segmentation,
    segmentation_arrays,
    train_segmentation,
)


def images(n=2, size=32, channels=3, seed=0):
    return Tensor(np.random.default_rng(seed).random((n, channels, size, size), dtype=np.float32))


def test_convolutionize_gives_the_linear_output_on_every_window():
    minidl.manual_seed(0)
    linear = nn.Linear(3 * 4 * 4, 5)
    conv = convolutionize(linear, 3, 4)
    x = images(n=1, size=7, channels=3).data
    dense = conv(Tensor(x)).data
    assert dense.shape == (1, 5, 4, 4)
    for i in range(4):
        for j in range(4):
            crop = x[:, :, i:i + 4, j:j + 4].reshape(1, -1)   # flatten: row-major [C, k, k]
            by_linear = crop @ linear.weight.data.T + linear.bias.data
            np.testing.assert_allclose(dense[:, :, i, j], by_linear, rtol=1e-5, atol=1e-5)
    # a copy, not a view: training the conv leaves the Linear as it was
    conv.weight.data[...] = 0
    assert np.abs(linear.weight.data).sum() > 0


def test_convolutionize_checks_the_feature_count():
    with pytest.raises(ValueError, match=r"convolutionize: the Linear reads 12 features, but a "
                                         r"\[3, 4, 4\] map has 48"):
        convolutionize(nn.Linear(12, 2), 3, 4)


def bilinear_by_hand(x, factor):
    """Bilinear up-sampling, align_corners=False, from the definition (pixel centres), 2-D."""
    h, w = x.shape

    def taps(n):
        src = np.maximum((np.arange(n * factor) + 0.5) / factor - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n - 1)
        return i0, np.minimum(i0 + 1, n - 1), src - i0

    r0, r1, ly = taps(h)
    c0, c1, lx = taps(w)
    top = x[r0][:, c0] * (1 - lx) + x[r0][:, c1] * lx
    bottom = x[r1][:, c0] * (1 - lx) + x[r1][:, c1] * lx
    return top * (1 - ly[:, None]) + bottom * ly[:, None]


@pytest.mark.parametrize("factor", [2, 4])
def test_bilinear_transposed_conv_equals_bilinear_interpolation_inside(factor):
    weight = bilinear_upsampling_weight(2, factor)
    assert weight.shape == (2, 2, 2 * factor, 2 * factor)
    np.testing.assert_allclose(weight[0, 1], 0)  # no mixing between channels
    if factor == 2:
        np.testing.assert_allclose(weight[0, 0], np.outer([.25, .75, .75, .25], [.25, .75, .75,
                                                                                 .25]))
    x = np.random.default_rng(1).random((1, 2, 6, 6)).astype(np.float32)
    up = F.conv_transpose2d(Tensor(x), Tensor(weight), stride=factor,
                            padding=(factor + 1) // 2).data
    assert up.shape == (1, 2, 6 * factor, 6 * factor)
    inside = slice(factor, -factor)  # the border differs: zero padding vs clamping
    for channel in range(2):
        expected = bilinear_by_hand(x[0, channel], factor)
        np.testing.assert_allclose(up[0, channel, inside, inside], expected[inside, inside],
                                   atol=1e-6)
        library = F.interpolate(Tensor(x), scale_factor=factor, mode="bilinear").data
        np.testing.assert_allclose(library[0, channel], expected, atol=1e-6)


@pytest.mark.parametrize("skips, stride", [(0, 8), (1, 4), (2, 2)])
def test_fcn_shapes_and_names(skips, stride):
    minidl.manual_seed(0)
    model = FCN(Backbone(widths=(4, 8, 8), depth=1), num_classes=3, skips=skips)
    assert model.output_stride == stride and model.name == f"FCN-{stride}s"
    assert len(model.score) == skips + 1 and len(model.up2) == skips
    assert tuple(model(images(size=16)).shape) == (2, 3, 16, 16)


def test_fcn_starts_as_the_coarse_net_because_skip_scores_are_zero():
    minidl.manual_seed(0)
    model = FCN(Backbone(widths=(4, 8), depth=1), num_classes=3, skips=1).eval()
    x = images(size=16)
    coarse = model.score[-1](model.backbone(x))                        # [2, 3, 4, 4]
    up2 = F.conv_transpose2d(coarse, Tensor(bilinear_upsampling_weight(3, 2)), stride=2,
                             padding=1)
    expected = F.interpolate(up2, size=(16, 16), mode="bilinear")
    np.testing.assert_allclose(model(x).data, expected.data, atol=1e-6)


def test_fcn_checks_the_skip_count():
    with pytest.raises(ValueError, match="FCN: skips must be in 0..1"):
        FCN(Backbone(widths=(4, 8), depth=1), 3, skips=2)


def test_unet_shapes_and_the_skip_carries_gradient_to_the_stem():
    minidl.manual_seed(0)
    model = UNet(3, num_classes=4, widths=(4, 8, 8))
    out = model(images(size=8))
    assert tuple(out.shape) == (2, 4, 8, 8)
    out[:, :, 0, 0].sum().backward()
    assert np.abs(model.stem[0][0].weight.grad).sum() > 0
    # the decoder's first block reads [stem features, up-sampled features]: 2 x 4 channels
    assert model.decoder[0][0][0].in_channels == 8


def test_unet_checks_its_input_size_and_widths():
    with pytest.raises(ValueError, match="UNet: image sides must be divisible by 4"):
        UNet(3, 2, widths=(4, 8, 8))(images(size=10))
    with pytest.raises(ValueError, match="UNet: needs at least two resolutions"):
        UNet(3, 2, widths=(4,))


def fixed_batch(size=16, n=4):
    data = ShapesDataset(n, image_size=size, max_objects=2, seed=3)
    return segmentation_arrays(data)


@pytest.mark.parametrize("make", [
    lambda: FCN(Backbone(widths=(8, 16), depth=1), 5, skips=1),
    lambda: UNet(3, 5, widths=(8, 16)),
], ids=["fcn", "unet"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(make):
    minidl.manual_seed(0)
    model = make()
    x, y = fixed_batch()
    optimizer = Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), Tensor(y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_segmentation_arrays_match_the_dataset_targets():
    data = ShapesDataset(5, image_size=16, max_objects=3, seed=4)
    x, y = segmentation_arrays(data)
    assert x.dtype == np.float32 and x.shape == (5, 3, 16, 16) and y.dtype == np.int64
    for i in range(5):
        image, target = data[i]
        np.testing.assert_array_equal(y[i], target["semantic"])
        np.testing.assert_array_equal(x[i], image)


class FixedLogits(nn.Module):
    """Returns logits that vote for a given label map (one per image of the batch)."""

    def __init__(self, labels, num_classes):
        super().__init__()
        self.logits = np.moveaxis(np.eye(num_classes, dtype=np.float32)[labels], -1, 1)

    def forward(self, x):
        return Tensor(self.logits[:len(x)])


def test_evaluate_and_predict_on_known_predictions():
    target = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [0, 0, 0, 0]]])
    predicted = target.copy()
    predicted[0, 0, 0] = 1          # one background pixel called class 1
    predicted[0, 2, :2] = 0         # two class-2 pixels called background
    model = FixedLogits(predicted, 3)
    loader = DataLoader(TensorDataset(np.zeros((1, 3, 4, 4), np.float32), target), batch_size=1)
    scores = evaluate_segmentation(model, loader, num_classes=3)
    # background: 8 pixels, 7 right, predicted 9 times -> IoU 7 / (8 + 9 - 7); class 1: 4 right
    # of 4, predicted 5 times -> 4 / 5; class 2: 2 right of 4, predicted twice -> 2 / 4
    assert scores["pixel_accuracy"] == pytest.approx(13 / 16)
    assert scores["mean_class_accuracy"] == pytest.approx((7 / 8 + 1 + 0.5) / 3)
    assert scores["mean_iou"] == pytest.approx((7 / 10 + 4 / 5 + 2 / 4) / 3)
    np.testing.assert_array_equal(predict_segmentation(model, np.zeros((1, 3, 4, 4))), predicted)


def test_train_segmentation_records_the_loss_and_validation_iou():
    minidl.manual_seed(0)
    model = FCN(Backbone(widths=(8, 16), depth=1), 5, skips=1)
    x, y = fixed_batch(n=8)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    history = train_segmentation(model, loader, Adam(model.parameters(), lr=1e-2), epochs=3,
                                 val_loader=loader, num_classes=5)
    assert len(history["loss"]) == 3 and len(history["val_mean_iou"]) == 3
    assert history["loss"][-1] < history["loss"][0]
    assert all(0 <= v <= 1 for v in history["val_mean_iou"])
    with pytest.raises(ValueError, match="train_segmentation: give num_classes"):
        train_segmentation(model, loader, Adam(model.parameters()), 1, val_loader=loader)
