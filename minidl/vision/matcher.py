"""Matcher: assign each predicted box (anchor or proposal) to a ground-truth box, or to none.

After torchvision.models.detection._utils.Matcher (Faster R-CNN's anchor labelling):
given the IoU of every ground-truth box with every prediction, each prediction
takes the ground truth it overlaps most, and then

    IoU >= high_threshold              -> that ground truth's index (a positive)
    low_threshold <= IoU < high        -> BETWEEN_THRESHOLDS = -2 (ignored in the loss)
    IoU < low_threshold                -> BELOW_LOW_THRESHOLD = -1 (background)

With ``allow_low_quality_matches`` every ground truth also keeps the
prediction(s) it overlaps most even if that IoU is below ``high_threshold``
(Faster R-CNN's rule (i): "the anchor with the highest IoU with a ground-truth
box" is positive too), so that no object is left without a positive. As in
torchvision, every prediction tied for that best IoU is kept, and it is matched
to the ground truth of its own row-wise maximum.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import as_array


class Matcher:
    """Args:
        high_threshold: IoU at or above which a prediction is matched (0.7 RPN, 0.5 Fast R-CNN).
        low_threshold: IoU below which a prediction is background (0.3 RPN).
        allow_low_quality_matches: keep each ground truth's best prediction(s) as matches.

    ``matcher(match_quality_matrix)`` with a [M ground truths, N predictions] IoU
    matrix returns int64 [N]: a ground-truth index, -1 or -2. Ties between ground
    truths go to the lowest index (np.argmax). With M = 0 (an image without objects)
    every prediction is background (-1); torchvision raises there instead.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float,
                 allow_low_quality_matches: bool = False):
        if low_threshold > high_threshold:
            raise ValueError(f"Matcher: low_threshold {low_threshold} must not exceed "
                             f"high_threshold {high_threshold}")
        self.high_threshold = float(high_threshold)
        self.low_threshold = float(low_threshold)
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __repr__(self) -> str:
        return (f"Matcher(high_threshold={self.high_threshold}, "
                f"low_threshold={self.low_threshold}, "
                f"allow_low_quality_matches={self.allow_low_quality_matches})")

    def __call__(self, match_quality_matrix) -> np.ndarray:
        quality = as_array(match_quality_matrix)
        if quality.ndim != 2:
            raise ValueError(f"Matcher: match_quality_matrix must be [M ground truths, "
                             f"N predictions], got shape {quality.shape}")
        if np.isnan(quality).any():
            raise ValueError("Matcher: match_quality_matrix contains NaN")
        m, n = quality.shape
        if m == 0:
            return np.full(n, self.BELOW_LOW_THRESHOLD, dtype=np.int64)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        all_matches = quality.argmax(axis=0).astype(np.int64)
        matched_vals = quality[all_matches, np.arange(n)]
        matches = all_matches.copy()
        matches[matched_vals < self.low_threshold] = self.BELOW_LOW_THRESHOLD
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[between] = self.BETWEEN_THRESHOLDS
        if self.allow_low_quality_matches:
            self.set_low_quality_matches_(matches, all_matches, quality)
        return matches

    @staticmethod
    def set_low_quality_matches_(matches, all_matches, quality) -> None:
        """For each ground truth, restore the match of every prediction that reaches its
        highest IoU (ties included), in place."""
        highest_per_gt = quality.max(axis=1, keepdims=True)
        _, pred_index = np.nonzero(quality == highest_per_gt)
        matches[pred_index] = all_matches[pred_index]
