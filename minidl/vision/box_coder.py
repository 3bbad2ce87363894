"""BoxCoder: boxes as offsets from reference boxes (R-CNN's bounding-box regression targets).

A detector does not predict box corners directly; it predicts how to move and
stretch a reference box r (an anchor or a proposal) onto the object's box g
(Girshick et al., "Rich feature hierarchies", 2014, appendix C; Fast R-CNN 2015):

    t_x = w_x (x - x_r) / w_r        t_w = w_w log(w / w_r)
    t_y = w_y (y - y_r) / h_r        t_h = w_h log(h / h_r)

where (x, y) is the box centre, (w, h) its width and height, and (w_x, w_y,
w_w, w_h) are fixed ``weights`` that scale the targets to roughly unit
variance: (10, 10, 5, 5) for the Fast R-CNN box head, (1, 1, 1, 1) for the RPN
(torchvision's choices). Widths follow the no-"+1" convention of
``minidl.vision.boxes`` (w = x2 - x1) and the centre is x1 + w / 2.

Decoding inverts the formulas. Before exponentiating, t_w and t_h (after
dividing by their weights) are clamped at ``bbox_xform_clip`` = log(1000 / 16)
so that one bad prediction cannot make a box e^100 pixels wide.
"""

from __future__ import annotations

import math

import numpy as np

import minidl
from minidl.autograd.function import as_array
from minidl.autograd.tensor import Tensor
from minidl.vision.boxes import check_boxes

DEFAULT_XFORM_CLIP = math.log(1000.0 / 16)


def _centres(boxes: np.ndarray):
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights, widths, heights


class BoxCoder:
    """Encode boxes as regression targets relative to reference boxes, and decode them back.

    Args:
        weights: (w_x, w_y, w_w, w_h), e.g. (10, 10, 5, 5) for RoI heads, (1, 1, 1, 1) for the RPN.
        bbox_xform_clip: upper clamp of t_w / w_w and t_h / w_h before exp in ``decode``.
    """

    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip: float = DEFAULT_XFORM_CLIP):
        if len(weights) != 4:
            raise ValueError(f"BoxCoder: weights must have 4 entries, got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = float(bbox_xform_clip)

    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights}, bbox_xform_clip={self.bbox_xform_clip:.4f})"

    # ---- encode ---------------------------------------------------------------
    def encode_single(self, reference_boxes, proposals) -> np.ndarray:
        """Targets (t_x, t_y, t_w, t_h) that move ``proposals`` onto ``reference_boxes``.

        Named as in torchvision: ``reference_boxes`` are the ground-truth boxes g,
        ``proposals`` the reference boxes r (anchors or proposals) they are matched to.
        reference_boxes: [N, 4], proposals: [N, 4] (xyxy) -> [N, 4] ndarray.
        Both need positive widths and heights (log 0 is -inf).
        """
        gt, ref = _check_encode(reference_boxes, proposals)
        wx, wy, ww, wh = self.weights
        gx, gy, gw, gh = _centres(gt)
        rx, ry, rw, rh = _centres(ref)
        targets = [wx * (gx - rx) / rw, wy * (gy - ry) / rh,
                   ww * np.log(gw / rw), wh * np.log(gh / rh)]
        return np.stack(targets, axis=1)

    def encode(self, reference_boxes, proposals) -> list:
        """``encode_single`` over per-image lists (as torchvision): list of [N_i, 4] -> list."""
        if len(reference_boxes) != len(proposals):
            raise ValueError(f"BoxCoder.encode: {len(reference_boxes)} lists of reference boxes "
                             f"but {len(proposals)} of proposals")
        return [self.encode_single(g, r) for g, r in zip(reference_boxes, proposals)]

    # ---- decode ---------------------------------------------------------------
    def decode_single(self, rel_codes, boxes):
        """Apply offsets to reference boxes: the inverse of ``encode_single``.

            x = t_x / w_x * w_r + x_r,    w = exp(min(t_w / w_w, clip)) * w_r    (same for y, h)
            box = (x - w/2, y - h/2, x + w/2, y + h/2)

        rel_codes: [N, 4 * C] (C sets of offsets per box, e.g. one per class),
        boxes: [N, 4] -> [N, 4 * C]. Differentiable in ``rel_codes`` when it is a Tensor.
        """
        ref, codes = _check_decode(rel_codes, boxes)
        if not isinstance(rel_codes, Tensor):
            rel_codes = codes
        rx, ry, rw, rh = (c[:, None].astype(codes.dtype) for c in _centres(ref))
        wx, wy, ww, wh = self.weights
        dx, dy = rel_codes[:, 0::4] / wx, rel_codes[:, 1::4] / wy
        dw, dh = rel_codes[:, 2::4] / ww, rel_codes[:, 3::4] / wh
        if isinstance(rel_codes, Tensor):
            clip = self.bbox_xform_clip
            dw, dh = minidl.clamp(dw, max=clip), minidl.clamp(dh, max=clip)
            w, h = minidl.exp(dw) * rw, minidl.exp(dh) * rh
        else:
            dw, dh = np.minimum(dw, self.bbox_xform_clip), np.minimum(dh, self.bbox_xform_clip)
            w, h = np.exp(dw) * rw, np.exp(dh) * rh
        x, y = dx * rw + rx, dy * rh + ry
        corners = [x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h]  # each [N, C]
        if isinstance(rel_codes, Tensor):
            return minidl.stack(corners, dim=2).reshape(codes.shape)
        return np.stack(corners, axis=2).reshape(codes.shape)

    def decode(self, rel_codes, boxes: list):
        """Decode one [sum N_i, 4 * C] block of offsets against per-image lists of boxes
        (as torchvision): -> [sum N_i, C, 4]."""
        ref = np.concatenate([as_array(b).reshape(-1, 4) for b in boxes] or [np.zeros((0, 4))])
        decoded = self.decode_single(rel_codes, ref)
        return decoded.reshape(decoded.shape[0], decoded.shape[1] // 4, 4)


# ---- argument checks --------------------------------------------------------
def _check_encode(reference_boxes, proposals):
    """Both as [N, 4] arrays of boxes with positive width and height, paired row by row."""
    gt, ref = as_array(reference_boxes), as_array(proposals)
    for name, b in (("reference_boxes", gt), ("proposals", ref)):
        check_boxes(b, "BoxCoder.encode", name)
        if b.ndim != 2:
            raise ValueError(f"BoxCoder.encode: {name} must have shape [N, 4], got {b.shape}")
        flat = ((b[:, 2] - b[:, 0]) <= 0) | ((b[:, 3] - b[:, 1]) <= 0)
        if flat.any():
            i = int(np.argmax(flat))
            raise ValueError(f"BoxCoder.encode: {name} row {i} = {b[i].tolist()} has zero "
                             "width or height, so log(w / w_r) is undefined")
    if gt.shape != ref.shape:
        raise ValueError(f"BoxCoder.encode: reference_boxes {gt.shape} and proposals "
                         f"{ref.shape} must pair up row by row")
    return gt, ref


def _check_decode(rel_codes, boxes):
    """(boxes [N, 4], codes [N, 4 C]) as arrays, finite, one row of codes per box."""
    ref, codes = as_array(boxes), as_array(rel_codes)
    check_boxes(ref, "BoxCoder.decode", "boxes")
    if codes.ndim != 2 or codes.shape[1] % 4 or codes.shape[0] != ref.shape[0]:
        raise ValueError(f"BoxCoder.decode: rel_codes must have shape [N, 4 * C] with N = "
                         f"{ref.shape[0]} boxes, got {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("BoxCoder.decode: rel_codes has non-finite values")
    return ref, codes
