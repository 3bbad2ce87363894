"""Precision, recall and average precision of one ranked list: the maths behind detection AP.

The idea. A detector answers, for one class, with a list of detections sorted by
score (best first). Walk down the list and mark each detection a true positive
(TP) if it found an object not found before, else a false positive (FP). After
the first k detections::

    precision_k = TP_k / k                          how many of my answers were right
    recall_k    = TP_k / (number of objects)        how many of the objects I found

Lowering the score threshold (taking more of the list) can only raise recall, and
usually lowers precision. The precision-recall curve shows the trade-off; *average
precision* (AP) is the area under it, so a detector is rewarded for ranking its
right answers above its wrong ones. A worked example (4 objects)::

    rank        1     2     3     4     5
    TP?         yes   no    yes   no    yes
    precision   1/1   1/2   2/3   2/4   3/5
    recall      1/4   1/4   2/4   2/4   3/4

Before measuring the area the curve is made monotone, *interpolated*: the
precision at recall r becomes the best precision at any recall >= r ("if I am
willing to go further down the list, how precise can I be?"). In the example the
interpolated precisions are 1, 2/3, 2/3, 3/5, 3/5. The benchmarks then differ only
in how they measure the area under this staircase:

- ``"all"`` (PASCAL VOC 2010 and later): the exact area, a sum over the points where
  recall rises: 1/4 * 1 + 1/4 * 2/3 + 1/4 * 3/5 = 0.567 (the last quarter of recall
  is never reached: precision 0 there).
- ``"11point"`` (PASCAL VOC 2007): the mean interpolated precision at the 11 recalls
  0, 0.1, ..., 1: (3 * 1 + 3 * 2/3 + 2 * 3/5 + 3 * 0) / 11 = 0.564.
- ``"101point"`` (COCO): the same at the 101 recalls 0, 0.01, ..., 1.

A recall level is reached when some rank's recall is >= the level, compared
exactly: a recall of 3/10 reaches the level 0.3. (py-faster-rcnn's ``np.arange(0,
1.1, 0.1)`` makes that level 0.30000000000000004, one ulp above 3/10, so a recall
of exactly 0.3 does not reach it there.)

References: Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge",
IJCV 2010, section 4.2; Lin et al., "Microsoft COCO", ECCV 2014; Manning, Raghavan
& Schuetze, "Introduction to Information Retrieval", 2008, section 8.4 (the
interpolated precision-recall curve comes from information retrieval).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import as_array

AP_METHODS = ("all", "11point", "101point")


def precision_recall(is_tp, num_positives: int, ignored=None):
    """Precision and recall after each detection of a list ranked by score:

        precision_k = TP_k / (TP_k + FP_k),   recall_k = TP_k / num_positives

    ``is_tp: [D]`` (best score first), True for a true positive. ``ignored`` (optional
    ``[D]``) marks detections that count neither way (e.g. matched to a VOC "difficult"
    object); they are dropped first. Returns ``(precision [D'], recall [D'])`` over the
    D' detections left. Raises if ``num_positives`` is 0 (recall is undefined: such a
    class has no AP).
    """
    is_tp = _ranked_flags(is_tp, num_positives, ignored)
    tp = np.cumsum(is_tp, dtype=np.float64)  # true positives among the first k
    fp = np.cumsum(~is_tp, dtype=np.float64)  # false positives among the first k
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return precision, tp / num_positives


def interpolated_precision(precision) -> np.ndarray:
    """The monotone envelope of a precision curve (rank order):

        p_interp(k) = max over k' >= k of precision(k')

    precision: [D] -> [D] (an empty curve stays empty).
    """
    precision = np.asarray(precision, dtype=np.float64)
    return np.maximum.accumulate(precision[::-1])[::-1]


def precision_at_recall_levels(precision, recall, levels) -> np.ndarray:
    """Interpolated precision at each recall level r: p_interp at the first rank whose
    recall is >= r, and 0 where no rank reaches r.

    precision, recall: [D] in rank order (recall non-decreasing); levels: [L] -> [L].
    """
    envelope = interpolated_precision(precision)
    first = np.searchsorted(recall, levels, side="left")  # first rank with recall >= level
    sampled = np.zeros(len(levels))
    reached = first < len(recall)
    sampled[reached] = envelope[first[reached]]
    return sampled


def average_precision(precision, recall, method: str = "all") -> float:
    """Area under a precision-recall curve, measured as a benchmark does (module docstring).

    ``precision, recall: [D]`` in rank order (recall non-decreasing), e.g. from
    ``precision_recall``. ``method``:

    - ``"all"`` (VOC 2010+): sum over the points where recall rises of
      (r_k - r_{k-1}) * p_interp(r_k), the exact area under the interpolated curve;
    - ``"11point"`` (VOC 2007): mean of p_interp(r) at r = 0, 0.1, ..., 1.0;
    - ``"101point"`` (COCO): mean of p_interp(r) at r = 0, 0.01, ..., 1.0.

    A recall level never reached counts as precision 0. An empty list gives 0.
    (``coco_evaluate`` samples its 101 levels exactly as pycocotools does,
    ``np.linspace(0, 1, 101)``, where e.g. 0.35 and 0.7 are one ulp above 35/100 and
    7/10; so its AP can differ from ``average_precision(..., "101point")`` when a recall
    hits one of those levels exactly.)
    """
    precision, recall = _curve(precision, recall, method)
    if method == "all":
        return area_under_interpolated_curve(precision, recall)
    steps = 10 if method == "11point" else 100
    levels = np.arange(steps + 1) / steps  # k / steps exactly (see the module docstring)
    return float(precision_at_recall_levels(precision, recall, levels).mean())


def area_under_interpolated_curve(precision, recall) -> float:
    """VOC 2010's AP: the curve starts at (recall 0, precision 0) and ends at (1, 0), is
    interpolated, and its area is summed over the points where recall rises.

    precision, recall: [D] in rank order -> float.
    """
    r = np.concatenate([[0.0], recall, [1.0]])
    p = interpolated_precision(np.concatenate([[0.0], precision, [0.0]]))
    rises = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[rises + 1] - r[rises]) * p[rises + 1]))


# ---- argument checks --------------------------------------------------------
def _ranked_flags(is_tp, num_positives, ignored) -> np.ndarray:
    """``is_tp`` as a flat bool array without the ignored detections; checks num_positives."""
    if num_positives <= 0:
        raise ValueError("precision_recall: num_positives must be > 0 (recall is undefined "
                         "for a class without ground truth)")
    is_tp = as_array(is_tp).astype(bool).ravel()
    if ignored is not None:
        ignored = as_array(ignored).astype(bool).ravel()
        if ignored.shape != is_tp.shape:
            raise ValueError(f"precision_recall: ignored has {ignored.size} entries but is_tp "
                             f"has {is_tp.size}")
        is_tp = is_tp[~ignored]
    return is_tp


def _curve(precision, recall, method):
    """Flat float64 precision and recall of the same length; checks ``method``."""
    if method not in AP_METHODS:
        raise ValueError(f"average_precision: method must be 'all', '11point' or '101point', "
                         f"got {method!r}")
    precision = as_array(precision).astype(np.float64).ravel()
    recall = as_array(recall).astype(np.float64).ravel()
    if precision.shape != recall.shape:
        raise ValueError(f"average_precision: precision {precision.shape} and recall "
                         f"{recall.shape} must have the same length")
    return precision, recall
