"""Networks that label every pixel, and the loop that trains and scores them.

Semantic segmentation gives each pixel of an image [N, 3, H, W] a class: the
network outputs logits [N, K, H, W] and is trained with a per-pixel loss
(``F.cross_entropy`` takes the class axis second, as PyTorch).

- ``convolutionize``: a Linear layer that reads a flattened [C, k, k] map is a
  k x k convolution with the same weights. A classifier of crops becomes a
  fully convolutional network that classifies every crop of a larger image in
  one pass (Sermanet et al. 2014, OverFeat; Long et al. 2015, section 3.1).
- ``FCN``: Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic
  Segmentation", CVPR 2015. Score the coarsest map of a backbone with a 1x1
  conv; to recover detail, up-sample the scores x2 with a transposed
  convolution (initialized to bilinear interpolation) and add the scores of
  the next finer map ("skip"), as many times as ``skips`` says; finally
  up-sample bilinearly to the image size. The name gives the stride of the
  last scores: FCN-32s (no skip), FCN-16s (one), FCN-8s (two).
- ``UNet``: Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for
  Biomedical Image Segmentation", MICCAI 2015. An encoder that halves the
  resolution stage by stage, a decoder that doubles it back, and at each
  resolution the encoder's features *concatenated* to the decoder's.
- ``segmentation_arrays``, ``train_segmentation``, ``evaluate_segmentation``,
  ``predict_segmentation``: data in, trained model and scores (pixel accuracy,
  mean class accuracy, mean IoU; ``minidl/vision/metrics/segmentation.py``) out.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.mode import no_grad
from minidl.autograd.tensor import Tensor
from minidl.nn.containers import ModuleList, Sequential
from minidl.nn.conv import Conv2d, ConvTranspose2d
from minidl.nn.linear import Identity, Linear
from minidl.nn.module import Module
from minidl.nn.norm import InstanceNorm2d
from minidl.ops.loss import cross_entropy
from minidl.ops.shape import cat
from minidl.ops.upsample import interpolate
from minidl.utils.training import train_epoch
from minidl.vision.metrics import ConfusionMatrix
from minidl.vision.models.backbone import Backbone, conv_norm_relu


def convolutionize(linear: Linear, in_channels: int, kernel_size) -> Conv2d:
    """The k x k convolution that computes ``linear`` on every k x k window of a map.

    A Linear layer reading a flattened map x: [C, kh, kw] computes
    y[o] = b[o] + sum_{c,i,j} W[o, c*kh*kw + i*kw + j] x[c, i, j], which is one
    output pixel of a convolution with weight W.reshape(out, C, kh, kw) (flatten
    and reshape use the same row-major order). Slid over a larger map, the
    convolution gives the Linear's output for every window at once.

    linear: [out, C*kh*kw] -> Conv2d(C, out, (kh, kw)) sharing no memory with it.
    """
    kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
    if linear.in_features != in_channels * kh * kw:
        raise ValueError(f"convolutionize: the Linear reads {linear.in_features} features, but a "
                         f"[{in_channels}, {kh}, {kw}] map has {in_channels * kh * kw}")
    conv = Conv2d(in_channels, linear.out_features, (kh, kw), bias=linear.bias is not None)
    conv.weight.data[...] = linear.weight.data.reshape(linear.out_features, in_channels, kh, kw)
    if linear.bias is not None:
        conv.bias.data[...] = linear.bias.data
    return conv


def bilinear_upsampling_weight(channels: int, factor: int) -> np.ndarray:
    """The transposed-convolution weight that up-samples each channel bilinearly by ``factor``.

    One tent filter per channel (no mixing between channels), size 2f - f mod 2:

        w1[i] = 1 - |i - c| / f,   c = (size - 1) / 2,    w[ch, ch] = outer(w1, w1)

    e.g. f = 2: w1 = (0.25, 0.75, 0.75, 0.25). With stride f and padding
    ceil((f - 1) / 2) it equals ``interpolate(mode="bilinear")`` away from the
    border (lesson 05 checks it). FCN initializes its up-sampling layers so.
    Returns float32 [channels, channels, size, size] (ConvTranspose2d's layout).
    """
    size = 2 * factor - factor % 2
    tent = 1 - np.abs(np.arange(size) - (size - 1) / 2) / factor
    weight = np.zeros((channels, channels, size, size), np.float32)
    weight[np.arange(channels), np.arange(channels)] = np.outer(tent, tent)
    return weight


class FCN(Module):
    """Fully convolutional network with ``skips`` skip connections (Long et al. 2015).

        s_L   = score_L(C_L)                                  1x1 conv on the coarsest map
        s_l   = up2_l(s_{l+1}) + score_l(C_l)                 for the ``skips`` finer maps
        out   = bilinear up-sampling of the finest s to the image size

    ``up2`` is a transposed convolution (kernel 4, stride 2) initialized to bilinear
    interpolation and learned; the skip scores start at zero, so the untrained net
    is the coarser one (the paper's initialization).

    Args:
        backbone: a ``Backbone`` (its stages give maps at strides 2, 4, ..., 2^S).
        num_classes: K, background included.
        skips: how many finer maps to fuse (0: FCN-(2^S)s; each skip halves the stride).

    Shapes: [N, C, H, W] -> logits [N, K, H, W]; H, W divisible by the backbone's last stride.
    Attribute ``output_stride``: the stride of the finest scores (32 for FCN-32s).
    """

    def __init__(self, backbone: Backbone, num_classes: int, skips: int = 0):
        super().__init__()
        if not 0 <= skips < len(backbone.widths):
            raise ValueError(f"FCN: skips must be in 0..{len(backbone.widths) - 1} for a "
                             f"backbone of {len(backbone.widths)} stages, got {skips}")
        self.backbone, self.skips = backbone, skips
        used = range(len(backbone.widths) - 1 - skips, len(backbone.widths))
        self.output_stride = backbone.strides[used[0]]
        self.score = ModuleList([Conv2d(backbone.widths[i], num_classes, 1) for i in used])
        for layer in list(self.score)[:-1]:
            layer.weight.data[...] = 0.0
            layer.bias.data[...] = 0.0
        self.up2 = ModuleList([ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1,
                                               bias=False) for _ in range(skips)])
        for layer in self.up2:
            layer.weight.data[...] = bilinear_upsampling_weight(num_classes, 2)

    @property
    def name(self) -> str:
        return f"FCN-{self.output_stride}s"

    def forward(self, x):
        maps = self.backbone.features(x)[-(self.skips + 1):]
        score = self.score[-1](maps[-1])
        for level in range(self.skips - 1, -1, -1):
            score = self.up2[level](score) + self.score[level](maps[level])
        return interpolate(score, size=tuple(x.shape[2:]), mode="bilinear")


class UNet(Module):
    """U-Net: an encoder-decoder with the encoder's features concatenated at each resolution.

        e_0 = stem(x)                           two conv-norm-ReLU at full resolution
        e_l = encoder stage l (e_{l-1})         stride-2 conv-norm-ReLU, then one more: H / 2^l
        d_L = e_L
        d_l = block_l(cat[e_l, up_l(d_{l+1})])  up_l: 2x2 transposed conv, stride 2

    and a 1x1 conv maps d_0 to K class scores. Two changes from the paper, to
    keep it short: the convolutions are padded (no cropping of the skips), and the
    encoder halves the resolution with the stride-2 convolutions of ``Backbone``
    instead of max-pooling.

    Args:
        in_channels: image channels. num_classes: K (background included).
        widths: channels at each resolution, full resolution first.
        norm: "batch", "group" or "none".
        standardize_input: start with ``InstanceNorm2d(in_channels)``, as ``Backbone`` can.

    Shapes: [N, in_channels, H, W] -> [N, K, H, W]; H, W divisible by 2^(len(widths) - 1).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, widths=(16, 32, 64, 128),
                 norm: str = "batch", standardize_input: bool = False):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"UNet: needs at least two resolutions, got widths={widths!r}")
        self.widths = tuple(widths)
        self.standardize = InstanceNorm2d(in_channels) if standardize_input else Identity()
        self.stem = Sequential(conv_norm_relu(in_channels, widths[0], norm=norm),
                               conv_norm_relu(widths[0], widths[0], norm=norm))
        self.encoder = Backbone(widths[0], widths[1:], depth=2, norm=norm)
        levels = range(len(widths) - 1)
        self.up = ModuleList([ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                              for i in levels])
        self.decoder = ModuleList([Sequential(conv_norm_relu(2 * widths[i], widths[i], norm=norm),
                                              conv_norm_relu(widths[i], widths[i], norm=norm))
                                   for i in levels])
        self.head = Conv2d(widths[0], num_classes, 1)

    def forward(self, x):
        factor = 2 ** (len(self.widths) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"UNet: image sides must be divisible by {factor} for "
                             f"{len(self.widths)} resolutions, got {tuple(x.shape)}")
        skips = [self.stem(self.standardize(x))]
        skips += self.encoder.features(skips[0])
        y = skips[-1]
        for level in range(len(self.widths) - 2, -1, -1):
            y = self.decoder[level](cat([skips[level], self.up[level](y)], dim=1))
        return self.head(y)


def segmentation_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 [N, 3, H, W] in [0, 1] and semantic masks int64 [N, H, W] (0 = background).

    ``dataset``: a synthetic data set of ``minidl.data.shapes`` (its ``images``,
    ``instance_ids`` and ``slot_labels`` arrays): the class of a pixel is the label
    of the object slot that covers it.
    """
    labels = np.concatenate([np.zeros((len(dataset), 1), np.int64), dataset.slot_labels], axis=1)
    ids = dataset.instance_ids.astype(np.int64)
    semantic = np.take_along_axis(labels, ids.reshape(len(ids), -1), axis=1).reshape(ids.shape)
    return dataset.images.astype(np.float32) / 255.0, semantic


def predict_segmentation(model, images, batch_size: int = 64) -> np.ndarray:
    """Class of every pixel, int64 [N, H, W]: argmax of the logits (eval mode, no graph)."""
    model.eval()
    images = np.asarray(getattr(images, "data", images))
    out = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            out.append(model(Tensor(images[start:start + batch_size])).data.argmax(axis=1))
    return np.concatenate(out)


def evaluate_segmentation(model, loader, num_classes: int) -> dict:
    """Pixel accuracy, mean class accuracy and mean IoU of ``model`` over ``loader``.

    Long et al. 2015, section 5: with n_ij the pixels of class i predicted as j and
    t_i = sum_j n_ij, pixel accuracy = sum_i n_ii / sum_i t_i, mean accuracy =
    mean_i n_ii / t_i, mean IoU = mean_i n_ii / (t_i + sum_j n_ji - n_ii). One
    confusion matrix over all pixels of all images, as the paper (and VOC) count.
    Returns ``segmentation_scores``' dict (plus per-class ``iou``, ``class_accuracy``).
    """
    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore_index=None)
    with no_grad():
        for images, masks in loader:
            matrix.update(model(images).data.argmax(axis=1), masks.data)
    return matrix.compute()


def train_segmentation(model, loader, optimizer, epochs: int, loss_fn=cross_entropy,
                       scheduler=None, val_loader=None, num_classes: int | None = None,
                       desc: str = "train") -> dict:
    """Train a dense predictor for ``epochs`` epochs; return its history.

    Each epoch is ``minidl.utils.training.train_epoch``: for every batch
    (images [B, 3, H, W], masks [B, H, W]) the loss of ``model(images)`` against the
    masks, backward, optimizer step (and ``scheduler.step()``). With ``val_loader``,
    the mean IoU on it after each epoch. History: {"loss": [...], "val_mean_iou": [...]}.
    """
    if val_loader is not None and num_classes is None:
        raise ValueError("train_segmentation: give num_classes to score the val_loader")
    history = {"loss": [], "val_mean_iou": []}
    for epoch in range(epochs):
        history["loss"].append(train_epoch(model, loader, loss_fn, optimizer, scheduler,
                                           desc=f"{desc} {epoch + 1}/{epochs}"))
        if val_loader is not None:
            scores = evaluate_segmentation(model, val_loader, num_classes)
            history["val_mean_iou"].append(scores["mean_iou"])
    return history
