"""Semantic segmentation scores: pixel accuracy, mean class accuracy and mean IoU.

Every pixel is a classification, so the whole evaluation is one confusion matrix
C [K, K] (C[i, j] = pixels of true class i predicted as class j), accumulated over
the data set, and three numbers read off it (Long, Shelhamer & Darrell, "Fully
Convolutional Networks for Semantic Segmentation", CVPR 2015, section 5).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import as_array


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = 255):
    """Pixel counts ``C [K, K]``: C[i, j] = pixels of true class i predicted as class j.

    ``pred, target``: integer label maps of the same shape (e.g. ``[N, H, W]``; take the
    argmax over the class axis of the logits first). Pixels whose target equals
    ``ignore_index`` (void / object borders in VOC) are not counted.
    """
    pred, target = _counted_pixels(pred, target, num_classes, ignore_index)
    return np.bincount(target * num_classes + pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_scores(confmat) -> dict:
    """Pixel accuracy, mean class accuracy and mean IoU from a confusion matrix ``C [K, K]``.

    With n_ij = C[i, j] and t_i = sum_j n_ij (pixels of class i):

        pixel accuracy      = sum_i n_ii / sum_i t_i
        mean class accuracy = mean_i n_ii / t_i
        mean IoU            = mean_i n_ii / (t_i + sum_j n_ji - n_ii)

    A class absent from the target has no accuracy (NaN, left out of the mean); its
    IoU is 0 if it was predicted somewhere, NaN (left out) if it was not.
    """
    c = as_array(confmat).astype(np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"segmentation_scores: confusion matrix must be [K, K], got {c.shape}")
    diag, true_count, pred_count = np.diag(c), c.sum(1), c.sum(0)
    union = true_count + pred_count - diag
    class_acc = np.divide(diag, true_count, out=np.full(len(c), np.nan), where=true_count > 0)
    iou = np.divide(diag, union, out=np.full(len(c), np.nan), where=union > 0)
    total = c.sum()

    def mean(x):
        x = x[~np.isnan(x)]
        return float(x.mean()) if x.size else float("nan")

    return {"pixel_accuracy": float(diag.sum() / total) if total else float("nan"),
            "mean_class_accuracy": mean(class_acc), "mean_iou": mean(iou),
            "class_accuracy": class_acc, "iou": iou}


class ConfusionMatrix:
    """Accumulates a segmentation confusion matrix over batches.

        cm = ConfusionMatrix(num_classes=21, ignore_index=255)
        for images, masks in loader:
            cm.update(model(images).argmax(1), masks)
        cm.compute()["mean_iou"]
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be a positive int, "
                             f"got {num_classes!r}")
        self.num_classes, self.ignore_index = int(num_classes), ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred, target) -> None:
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def reset(self) -> None:
        self.matrix[:] = 0

    def compute(self) -> dict:
        return segmentation_scores(self.matrix)


# ---- argument checks --------------------------------------------------------
def _counted_pixels(pred, target, num_classes, ignore_index):
    """The flat int64 labels of the pixels to count (target != ignore_index), checked."""
    op = "confusion_matrix"
    pred, target = as_array(pred), as_array(target)
    if pred.shape != target.shape:
        raise ValueError(f"{op}: pred {pred.shape} and target {target.shape} must have the "
                         f"same shape (label maps; argmax the logits first)")
    for name, a in (("pred", pred), ("target", target)):
        if a.dtype.kind not in "iub":
            raise TypeError(f"{op}: {name} must hold integer class labels, got {a.dtype}")
    pred, target = pred.astype(np.int64).ravel(), target.astype(np.int64).ravel()
    keep = np.ones(len(target), bool) if ignore_index is None else target != ignore_index
    pred, target = pred[keep], target[keep]
    for name, a in (("target", target), ("pred", pred)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{op}: {name} has labels outside 0..{num_classes - 1} "
                             f"(min {a.min()}, max {a.max()}; ignore_index={ignore_index})")
    return pred, target
