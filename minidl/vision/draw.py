"""Pictures of detection data: boxes, masks, keypoints, anchors, matches, RoI bins.

Every function draws onto ``ax`` if given, else on a new figure, and returns the
figure, so pictures can be layered::

    fig = draw_boxes(image, target["boxes"], target["labels"], class_names=SHAPE_CLASSES)
    draw_boxes(None, detections, scores=scores, ax=fig.axes[0], linestyle="--")
    save_figure(fig, args.out / "detections.png")       # minidl.utils.lesson

Images may be ``[3, H, W]`` / ``[1, H, W]`` (CHW, as the data sets give them),
``[H, W, 3]`` or ``[H, W]``, ndarray or Tensor, floats in [0, 1] or uint8.
Boxes are xyxy pixels. matplotlib is imported inside the functions only, so
``import minidl`` never loads it.
"""

from __future__ import annotations

import numpy as np

from minidl.vision.metrics.ranking import interpolated_precision

# matplotlib's "tab10" colours: one per class (label % 10), readable on most images
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
BIN_COLOURS = ("#ff2020", "#ffffff", "#ff9900", "#ff40ff")  # visible on viridis feature maps


def class_colour(label: int) -> str:
    """The colour of class ``label`` (a hex string)."""
    return PALETTE[int(label) % len(PALETTE)]


def _rgb(colour: str) -> np.ndarray:
    colour = colour.lstrip("#")
    return np.array([int(colour[i:i + 2], 16) / 255 for i in (0, 2, 4)])


def _array(x) -> np.ndarray:
    return np.asarray(getattr(x, "data", x))


def to_hwc(image) -> np.ndarray:
    """An image as ``[H, W, 3]`` floats in [0, 1] (or ``[H, W]``) for ``imshow``."""
    image = _array(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)
    elif image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] in (1, 3):
        image = np.moveaxis(image, 0, -1)  # ambiguous tiny image: CHW, as the data sets give
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"draw: expected an image [3, H, W], [H, W, 3] or [H, W], "
                         f"got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255
    return np.clip(image.astype(np.float32), 0, 1)


def _figure(ax, image, title=None, size=4.0):
    """(figure, axes): ``ax``'s figure, or a new one; shows ``image`` if given."""
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(size, size))
    else:
        fig = ax.figure
    if image is not None:
        shown = to_hwc(image)
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1,
                  extent=(0, shown.shape[1], shown.shape[0], 0), interpolation="nearest")
        ax.set_xlim(0, shown.shape[1])
        ax.set_ylim(shown.shape[0], 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def _boxes(boxes, op) -> np.ndarray:
    boxes = _array(boxes).astype(np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{op}: boxes must be [n, 4] xyxy, got shape {boxes.shape}")
    return boxes


def _rectangle(ax, box, colour, linewidth=1.5, linestyle="-", alpha=1.0, fill=False):
    from matplotlib.patches import Rectangle

    x1, y1, x2, y2 = box
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=fill, edgecolor=colour,
                           facecolor=colour if fill else "none", linewidth=linewidth,
                           linestyle=linestyle, alpha=alpha))


def show_image(image, ax=None, title=None):
    """Just the image (CHW or HWC)."""
    fig, _ = _figure(ax, image, title)
    return fig


def draw_boxes(image, boxes, labels=None, scores=None, class_names=None, ax=None,
               colour=None, linestyle="-", linewidth=1.5, score_threshold=None, title=None):
    """Boxes ``[n, 4]`` with an optional caption "name score" each, coloured by class.

    ``scores`` below ``score_threshold`` are not drawn. ``image=None`` draws on ``ax`` only.
    """
    op = "draw_boxes"
    boxes = _boxes(boxes, op)
    labels = None if labels is None else _array(labels).reshape(-1)
    scores = None if scores is None else _array(scores).reshape(-1)
    for name, values in (("labels", labels), ("scores", scores)):
        if values is not None and len(values) != len(boxes):
            raise ValueError(f"{op}: {len(boxes)} boxes but {len(values)} {name}")
    fig, ax = _figure(ax, image, title)
    for i, box in enumerate(boxes):
        if scores is not None and score_threshold is not None and scores[i] < score_threshold:
            continue
        c = colour or (class_colour(labels[i]) if labels is not None else PALETTE[0])
        _rectangle(ax, box, c, linewidth, linestyle)
        caption = []
        if labels is not None:
            label = int(labels[i])
            names_ok = class_names is not None and 0 <= label < len(class_names)
            caption.append(class_names[label] if names_ok else str(label))
        if scores is not None:
            caption.append(f"{float(scores[i]):.2f}")
        if caption:
            ax.text(box[0], box[1], " ".join(caption), color="white", fontsize=7,
                    va="bottom", ha="left", clip_on=True,
                    bbox={"facecolor": c, "alpha": 0.8, "pad": 1, "edgecolor": "none"})
    return fig


def overlay_masks(image, masks, labels=None, alpha: float = 0.5) -> np.ndarray:
    """``[H, W, 3]``: the image with each mask ``[n, H, W]`` tinted in its class colour."""
    base = to_hwc(image)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=-1)
    masks = _array(masks)
    if masks.ndim != 3 or masks.shape[1:] != base.shape[:2]:
        raise ValueError(f"draw_masks: masks must be [n, {base.shape[0]}, {base.shape[1]}] "
                         f"like the image, got shape {masks.shape}")
    out = base.copy()
    for i, mask in enumerate(masks):
        c = _rgb(class_colour(labels[i]) if labels is not None else PALETTE[i % len(PALETTE)])
        m = (mask > 0.5 if mask.dtype.kind == "f" else mask.astype(bool))[..., None]
        out = np.where(m, (1 - alpha) * out + alpha * c, out)
    return out


def draw_masks(image, masks, labels=None, alpha: float = 0.5, ax=None, title=None,
               contours: bool = True):
    """Instance masks ``[n, H, W]`` tinted over the image (class colours if ``labels``)."""
    labels = None if labels is None else _array(labels).reshape(-1)
    shown = overlay_masks(image, masks, labels, alpha)
    fig, ax = _figure(ax, shown, title)
    if contours:
        masks = _array(masks).astype(np.float32)
        for i, mask in enumerate(masks):
            if mask.any():
                c = class_colour(labels[i]) if labels is not None else PALETTE[i % len(PALETTE)]
                ax.contour(np.arange(mask.shape[1]) + 0.5, np.arange(mask.shape[0]) + 0.5,
                           mask, levels=[0.5], colors=[c], linewidths=1)
    return fig


def draw_semantic(image, semantic, alpha: float = 0.5, ax=None, title=None):
    """A semantic mask ``[H, W]`` (class per pixel, 0 = background, left untinted)."""
    semantic = _array(semantic).astype(np.int64)
    classes = [c for c in np.unique(semantic) if c > 0]
    masks = np.stack([semantic == c for c in classes]) if classes else \
        np.zeros((0,) + semantic.shape, bool)
    return draw_masks(image, masks, np.array(classes), alpha, ax, title, contours=False)


def draw_keypoints(image, keypoints, skeleton=None, names=None, ax=None, title=None,
                   colour=None, min_visibility: float = 1):
    """Keypoints ``[n, K, 2 or 3]`` (x, y[, visibility]) joined along ``skeleton`` pairs.

    Visible points (v = 2) are filled, occluded ones (v = 1) hollow, v = 0 not drawn
    (points with v < ``min_visibility`` are skipped). ``names`` labels the first figure.
    """
    kp = _array(keypoints).astype(np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"draw_keypoints: keypoints must be [n, K, 2 or 3], got {kp.shape}")
    v = kp[..., 2] if kp.shape[-1] == 3 else np.full(kp.shape[:2], 2.0)
    fig, ax = _figure(ax, image, title)
    for i, person in enumerate(kp):
        c = colour or PALETTE[i % len(PALETTE)]
        for a, b in (skeleton or ()):
            if v[i, a] >= min_visibility and v[i, b] >= min_visibility:
                ax.plot(person[[a, b], 0], person[[a, b], 1], color=c, linewidth=2, alpha=0.9)
        shown = v[i] >= min_visibility
        seen = shown & (v[i] >= 2)
        ax.scatter(person[seen, 0], person[seen, 1], s=14, color=c, edgecolors="white",
                   linewidths=0.6, zorder=3)
        ax.scatter(person[shown & ~seen, 0], person[shown & ~seen, 1], s=14,
                   facecolors="none", edgecolors=c, linewidths=1.0, zorder=3)
        if names is not None and i == 0:
            for k in np.nonzero(shown)[0]:
                ax.annotate(names[k], person[k, :2], fontsize=5, color="white",
                            xytext=(2, 2), textcoords="offset points")
    return fig


def draw_anchors(image, anchors, ax=None, title=None, colour="#ffff00", max_anchors=None,
                 centres: bool = True, linewidth: float = 0.8, seed: int = 0):
    """Anchor boxes ``[A, 4]`` and their centres (at most ``max_anchors``, a random subset)."""
    anchors = _boxes(anchors, "draw_anchors")
    if max_anchors is not None and len(anchors) > max_anchors:
        keep = np.random.default_rng(seed).choice(len(anchors), max_anchors, replace=False)
        anchors = anchors[np.sort(keep)]
    fig, ax = _figure(ax, image, title)
    for box in anchors:
        _rectangle(ax, box, colour, linewidth, alpha=0.7)
    if centres and len(anchors):
        ax.scatter((anchors[:, 0] + anchors[:, 2]) / 2, (anchors[:, 1] + anchors[:, 3]) / 2,
                   s=3, color=colour, zorder=3)
    return fig


def draw_matches(image, anchors, matched_idxs, gt_boxes, ax=None, title=None,
                 max_negatives: int = 30, seed: int = 0):
    """A matcher's decisions (``minidl.vision.Matcher``): per anchor ``matched_idxs [A]``
    holds the index of its ground-truth box (positive), -1 (negative, background) or
    -2 (between the thresholds: ignored by the loss).

    Ground truth: thick white. Positives: solid, in the colour of their ground truth,
    with a line from the anchor centre to it. Ignored: dashed orange. Negatives: thin
    grey (at most ``max_negatives`` of them, a fixed random subset, or the picture
    is a grey carpet).
    """
    anchors = _boxes(anchors, "draw_matches")
    gt_boxes = _boxes(gt_boxes, "draw_matches")
    matched = _array(matched_idxs).astype(np.int64).reshape(-1)
    if len(matched) != len(anchors):
        raise ValueError(f"draw_matches: {len(anchors)} anchors but {len(matched)} matches")
    if len(matched) and matched.max(initial=-1) >= len(gt_boxes):
        raise ValueError(f"draw_matches: a match points at ground truth {matched.max()} "
                         f"but there are {len(gt_boxes)} boxes")
    fig, ax = _figure(ax, image, title)
    negatives = np.nonzero(matched == -1)[0]
    if len(negatives) > max_negatives:
        negatives = np.random.default_rng(seed).choice(negatives, max_negatives, replace=False)
    for i in negatives:
        _rectangle(ax, anchors[i], "#bbbbbb", 0.6, alpha=0.6)
    for i in np.nonzero(matched == -2)[0]:
        _rectangle(ax, anchors[i], "#ff9900", 1.0, "--")
    for box in gt_boxes:
        _rectangle(ax, box, "white", 2.5)
    for i in np.nonzero(matched >= 0)[0]:
        c = PALETTE[matched[i] % len(PALETTE)]
        _rectangle(ax, anchors[i], c, 1.2)
        a, g = anchors[i], gt_boxes[matched[i]]
        ax.plot([(a[0] + a[2]) / 2, (g[0] + g[2]) / 2], [(a[1] + a[3]) / 2, (g[1] + g[3]) / 2],
                color=c, linewidth=0.8)
    counts = (f"{int((matched >= 0).sum())} positive, {int((matched == -2).sum())} ignored, "
              f"{int((matched == -1).sum())} negative")
    ax.set_xlabel(counts, fontsize=8)
    return fig


def draw_pr_curve(precision, recall, ax=None, label=None, title=None, envelope: bool = True):
    """A precision-recall curve (steps), and its monotone envelope used by AP (dashed;
    ``minidl.vision.metrics.ranking.interpolated_precision``)."""
    precision = _array(precision).astype(np.float64).reshape(-1)
    recall = _array(recall).astype(np.float64).reshape(-1)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 3.2))
    else:
        fig = ax.figure
    r = np.concatenate([[0.0], recall])
    p = np.concatenate([[precision[0] if len(precision) else 0.0], precision])
    line = ax.plot(r, p, marker="o", markersize=3, label=label)[0]
    if envelope and len(precision):
        ax.step(r, interpolated_precision(p), where="pre", linestyle="--",
                color=line.get_color(), alpha=0.7)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    if title:
        ax.set_title(title, fontsize=9)
    if label:
        ax.legend(fontsize=7)
    return fig


def roi_pool_bins(box, output_size, spatial_scale: float = 1.0) -> list:
    """RoIPool's bins on the feature map (Fast R-CNN, Girshick 2015; torchvision's rounding).

    The box is scaled and rounded to whole cells: x1' = round(x1 s), x2' = round(x2 s),
    width = max(x2' - x1' + 1, 1); bin j covers cells floor(j w / P) ... ceil((j + 1) w / P)
    (whole cells, so bins overlap or skip: the quantization RoIAlign removes).
    Returns ``[(x_lo, y_lo, x_hi, y_hi)]`` in feature-map cells, row-major.
    """
    ph, pw = (output_size, output_size) if np.isscalar(output_size) else output_size
    # C's round (half away from zero), as the kernel; Python's round() would go to even
    x1, y1, x2, y2 = [int(np.sign(v) * np.floor(abs(float(v) * spatial_scale) + 0.5))
                      for v in box]
    w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    bins = []
    for i in range(ph):
        for j in range(pw):
            bins.append((x1 + int(np.floor(j * w / pw)), y1 + int(np.floor(i * h / ph)),
                         x1 + int(np.ceil((j + 1) * w / pw)), y1 + int(np.ceil((i + 1) * h / ph))))
    return bins


def roi_align_samples(box, output_size, spatial_scale: float = 1.0, sampling_ratio: int = 2,
                      aligned: bool = False):
    """RoIAlign's bins and bilinear sample points (Mask R-CNN, He et al. 2017).

    No rounding: the box is x1 s (- 0.5 if ``aligned``) to x2 s, split into P equal
    bins, each sampled at ``sampling_ratio``^2 evenly spaced points. In the feature
    map's coordinates, where cell (i, j) has its centre at (j, i) as in the kernels.
    Returns ``(bins [(x_lo, y_lo, x_hi, y_hi)], points [n, 2] as (x, y))``.
    """
    ph, pw = (output_size, output_size) if np.isscalar(output_size) else output_size
    shift = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = [float(v) * spatial_scale - shift for v in box]
    w, h = x2 - x1, y2 - y1
    if not aligned:
        w, h = max(w, 1.0), max(h, 1.0)
    bw, bh = w / pw, h / ph
    bins, points = [], []
    g = int(sampling_ratio)
    for i in range(ph):
        for j in range(pw):
            bins.append((x1 + j * bw, y1 + i * bh, x1 + (j + 1) * bw, y1 + (i + 1) * bh))
            for a in range(g):
                for b in range(g):
                    points.append((x1 + j * bw + (b + 0.5) * bw / g,
                                   y1 + i * bh + (a + 0.5) * bh / g))
    return bins, np.array(points)


def draw_roi_bins(feature_map, box, output_size, mode: str = "align", spatial_scale: float = 1.0,
                  sampling_ratio: int = 2, aligned: bool = False, ax=None, title=None):
    """The cells a RoI op reads for one box on a feature map ``[H, W]`` (one channel).

    ``mode="pool"``: RoIPool's quantized bins (whole cells, shaded) over the exact box
    (dashed). ``mode="align"``: RoIAlign's exact bins and their bilinear sample points.
    Drawn in feature-map cells, cell (i, j) centred at (j, i).
    """
    if mode not in ("pool", "align"):
        raise ValueError(f"draw_roi_bins: mode must be 'pool' or 'align', got {mode!r}")
    fmap = _array(feature_map).astype(np.float32)
    if fmap.ndim != 2:
        raise ValueError(f"draw_roi_bins: feature_map must be [H, W], got shape {fmap.shape}")
    fig, ax = _figure(ax, None, title)
    h, w = fmap.shape
    ax.imshow(fmap, cmap="viridis", extent=(-0.5, w - 0.5, h - 0.5, -0.5),
              interpolation="nearest")
    for k in range(w + 1):
        ax.axvline(k - 0.5, color="white", linewidth=0.3, alpha=0.5)
    for k in range(h + 1):
        ax.axhline(k - 0.5, color="white", linewidth=0.3, alpha=0.5)
    exact = [float(v) * spatial_scale for v in box]
    _rectangle(ax, exact, "white", 1.5, "--")
    if mode == "pool":
        for i, (x_lo, y_lo, x_hi, y_hi) in enumerate(roi_pool_bins(box, output_size,
                                                                   spatial_scale)):
            c = BIN_COLOURS[i % len(BIN_COLOURS)]
            # cells x_lo .. x_hi - 1 are read: their squares span x_lo - 0.5 .. x_hi - 0.5
            _rectangle(ax, (x_lo - 0.5, y_lo - 0.5, x_hi - 0.5, y_hi - 0.5), c, 1.5,
                       alpha=0.35, fill=True)
            _rectangle(ax, (x_lo - 0.5, y_lo - 0.5, x_hi - 0.5, y_hi - 0.5), c, 1.5)
    else:
        bins, points = roi_align_samples(box, output_size, spatial_scale, sampling_ratio,
                                         aligned)
        for i, b in enumerate(bins):
            _rectangle(ax, b, BIN_COLOURS[i % len(BIN_COLOURS)], 1.5)
        if len(points):
            ax.scatter(points[:, 0], points[:, 1], s=8, color="red", zorder=3)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    return fig
