"""Synthetic detection, segmentation and pose data, generated from a seed.

Three data sets, all with the same sample format, all made in a few vectorized
NumPy passes (1,000 images of 64 x 64 in about a second) and identical for
the same ``seed``:

- ``ShapesDataset``: rectangles, ellipses, triangles and crosses in random
  colours on a textured, noisy background. Labels 1..4 (0 = background).
- ``DigitsDetection``: the shipped UCI digits (``minidl.data.digits``) scaled
  and placed on such a background. Labels 1..10 for the digits 0..9.
- ``StickFigures``: articulated stick figures with 14 named keypoints and a
  skeleton, for pose estimation (label 1 = person).

Objects may overlap: later objects are drawn over earlier ones. Each object's
instance mask is the part of it that stays *visible*, its box is recomputed
from that mask, and an object hidden for the most part (less than
``min_visible`` of its pixels left) is not drawn at all -- so every labelled
object can be seen and every drawn object is labelled.

A sample is ``(image, target)``::

    image  float32 [3, H, W] in [0, 1]
    target = {"boxes":    float32 [n, 4]  xyxy in pixels (x2, y2 exclusive edges),
              "labels":   int64 [n]       1..K, in drawing order (bottom first),
              "masks":    bool [n, H, W]  visible part of each object (disjoint),
              "semantic": int64 [H, W]    class of each pixel, 0 = background,
              "area":     float32 [n]     visible pixels (COCO's annotation area),
              "iscrowd":  bool [n]        all False,
              "image_id": int,
              "keypoints": float32 [n, 14, 3]   (StickFigures only) x, y, visibility}

Batch them with ``detection_collate`` (images stacked, targets kept in a list)::

    loader = DataLoader(ShapesDataset(512, seed=0), batch_size=16, shuffle=True,
                        collate_fn=detection_collate)
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.data.dataset import Dataset
from minidl.data.transforms import resize_bilinear

SHAPE_CLASSES = ("background", "rectangle", "ellipse", "triangle", "cross")
DIGIT_CLASSES = ("background",) + tuple(str(d) for d in range(10))
PERSON_CLASSES = ("background", "person")

KEYPOINT_NAMES = (
    "head", "neck",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_hand", "right_hand",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_foot", "right_foot",
)
_K = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
SKELETON = tuple((_K[a], _K[b]) for a, b in (
    ("head", "neck"),
    ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_hand"),
    ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_hand"),
    ("neck", "left_hip"), ("neck", "right_hip"), ("left_hip", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_foot"),
    ("right_hip", "right_knee"), ("right_knee", "right_foot"),
))
"""Pairs of keypoint indices joined by a limb (for drawing and for the figures' masks)."""

_CHUNK = 256  # images made together; chunk c of data set d uses default_rng([seed, c, d])


# ---------------------------------------------------------------------------
# Pieces shared by the three data sets
# ---------------------------------------------------------------------------

def _check_args(op, num_images, image_size, min_objects, max_objects, min_visible):
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) \
            or num_images < 1:
        raise ValueError(f"{op}: num_images must be a positive int, got {num_images!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or not 16 <= image_size <= 512:
        raise ValueError(f"{op}: image_size must be an int in 16..512 (64-128 is typical), "
                         f"got {image_size!r}")
    if not (isinstance(min_objects, (int, np.integer)) and isinstance(max_objects,
                                                                      (int, np.integer))
            and 0 <= min_objects <= max_objects and max_objects >= 1):
        raise ValueError(f"{op}: need 0 <= min_objects <= max_objects and max_objects >= 1, "
                         f"got min_objects={min_objects!r}, max_objects={max_objects!r}")
    if not 0.0 <= min_visible < 1.0:
        raise ValueError(f"{op}: min_visible must be in [0, 1), got {min_visible!r}")


def _grid(size: int):
    """Pixel-centre coordinates: x[j] = j + 0.5 (pixel j covers [j, j + 1))."""
    c = np.arange(size, dtype=np.float32) + 0.5
    return c[None, None, :], c[None, :, None]  # x: [1, 1, W], y: [1, H, 1]


def textured_background(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``[n, 3, size, size]`` float32: a base colour, a gradient, stripes and soft blotches.

    Texture makes the task honest: a detector cannot find objects by looking for
    any pixel that differs from a flat background.
    """
    x, y = _grid(size)
    x, y = x[:, None] / size, y[:, None] / size  # [1, 1, 1, W], [1, 1, H, 1] in (0, 1)
    base = rng.uniform(0.2, 0.8, (n, 3, 1, 1)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(np.float32)
    along = x * np.cos(angle) + y * np.sin(angle)
    gradient = rng.uniform(-0.25, 0.25, (n, 3, 1, 1)).astype(np.float32) * (along - 0.5)
    angle = rng.uniform(0, np.pi, (n, 1, 1, 1)).astype(np.float32)
    cycles = rng.uniform(3, 10, (n, 1, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(np.float32)
    stripes = np.sin(2 * np.pi * cycles * (x * np.cos(angle) + y * np.sin(angle)) + phase)
    stripes = stripes * rng.uniform(0.0, 0.08, (n, 3, 1, 1)).astype(np.float32)
    blotches = resize_bilinear(rng.normal(0, 0.06, (n, 3, 5, 5)).astype(np.float32), size)
    return (base + gradient + stripes + blotches).astype(np.float32)


def contrasting_colours(rng: np.random.Generator, background: np.ndarray, n_slots: int):
    """``[n, n_slots, 3]`` random colours, pushed away from each image's mean background."""
    mean = background.mean(axis=(2, 3))[:, None, :]  # [n, 1, 3]
    colours = rng.uniform(0, 1, (len(background), n_slots, 3)).astype(np.float32)
    too_close = np.abs(colours - mean).max(axis=2, keepdims=True) < 0.3
    pushed = np.where(mean > 0.5, mean - 0.45, mean + 0.45)
    return np.where(too_close, pushed, colours).astype(np.float32)


def resolve_occlusion(full: np.ndarray, active: np.ndarray, min_visible: float):
    """Which objects stay, and the visible part of each. Later slots are on top.

    full: bool ``[n, S, H, W]`` (slot s of image i as if alone); active: bool ``[n, S]``.
    Walking from the top slot down, an object is kept if at least ``min_visible``
    of its pixels (and at least 4 pixels) are not covered by the objects kept above
    it. Dropped objects are not drawn, so they cover nothing.
    Returns ``(keep [n, S], visible [n, S, H, W])``; visible masks are disjoint.
    """
    n, slots = active.shape
    covered = np.zeros((n,) + full.shape[2:], dtype=bool)
    keep = np.zeros((n, slots), dtype=bool)
    visible = np.zeros_like(full)
    for s in range(slots - 1, -1, -1):
        mask = full[:, s] & active[:, s, None, None]
        vis = mask & ~covered
        area, vis_area = mask.sum(axis=(1, 2)), vis.sum(axis=(1, 2))
        keep[:, s] = active[:, s] & (vis_area >= np.maximum(min_visible * area, 4))
        visible[:, s] = vis & keep[:, s, None, None]
        covered |= mask & keep[:, s, None, None]
    return keep, visible


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes ``[..., 4]`` of masks ``[..., H, W]`` (x2, y2 = last pixel + 1).

    An empty mask gives the box (0, 0, 0, 0).
    """
    cols, rows = masks.any(axis=-2), masks.any(axis=-1)  # [..., W], [..., H]
    w, h = cols.shape[-1], rows.shape[-1]
    x1 = cols.argmax(axis=-1)
    x2 = w - cols[..., ::-1].argmax(axis=-1)
    y1 = rows.argmax(axis=-1)
    y2 = h - rows[..., ::-1].argmax(axis=-1)
    boxes = np.stack([x1, y1, x2, y2], axis=-1).astype(np.float32)
    return np.where(cols.any(axis=-1)[..., None], boxes, 0.0).astype(np.float32)


def _finish_images(rng, images: np.ndarray, noise: float) -> np.ndarray:
    """Add pixel noise, clip to [0, 1] and store as uint8 (4x smaller than float32)."""
    images = images + noise * rng.standard_normal(images.shape, dtype=np.float32)
    return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)


def _chunks(num_images: int):
    for start in range(0, num_images, _CHUNK):
        yield start // _CHUNK, start, min(start + _CHUNK, num_images)


class SyntheticDetectionDataset(Dataset):
    """Base class of the synthetic data sets: stores the generated arrays compactly.

    Attributes: ``images`` uint8 ``[N, 3, H, W]``; ``instance_ids`` int8 ``[N, H, W]``
    (0 = background, s + 1 = slot s); ``slot_labels`` int64 ``[N, S]`` (0 = no object);
    ``slot_boxes`` float32 ``[N, S, 4]``; ``classes`` (names, index = label).
    """

    classes: tuple = ()

    def __init__(self, images, instance_ids, slot_labels, slot_boxes, slot_keypoints=None):
        self.images = images
        self.instance_ids = instance_ids
        self.slot_labels = slot_labels
        self.slot_boxes = slot_boxes
        self.slot_keypoints = slot_keypoints

    @property
    def num_classes(self) -> int:
        """Object classes, background not counted (labels are 1..num_classes)."""
        return len(self.classes) - 1

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        n = len(self)
        if not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index!r} out of range for "
                             f"{n} images")
        index = int(index) % n
        slots = np.nonzero(self.slot_labels[index])[0]
        ids = self.instance_ids[index]
        masks = ids[None] == (slots[:, None, None] + 1)
        labels = self.slot_labels[index, slots]
        lookup = np.zeros(self.slot_labels.shape[1] + 1, dtype=np.int64)
        lookup[slots + 1] = labels
        target = {
            "boxes": self.slot_boxes[index, slots].astype(np.float32),
            "labels": labels.astype(np.int64),
            "masks": masks,
            "semantic": lookup[ids],
            "area": masks.sum(axis=(1, 2)).astype(np.float32),
            "iscrowd": np.zeros(len(slots), dtype=bool),
            "image_id": index,
        }
        if self.slot_keypoints is not None:
            target["keypoints"] = self.slot_keypoints[index, slots].astype(np.float32)
        return self.images[index].astype(np.float32) / 255.0, target


def _store(images, visible, keep, labels):
    """Compact arrays from one chunk: instance-id map, labels and boxes of kept slots."""
    n, slots = keep.shape
    ids = np.zeros(visible.shape[:1] + visible.shape[2:], dtype=np.int8)
    for s in range(slots):
        ids[visible[:, s]] = s + 1
    slot_labels = np.where(keep, labels, 0).astype(np.int64)
    boxes = boxes_from_masks(visible)
    return images, ids, slot_labels, boxes


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------

def shape_masks(kind, cx, cy, half_w, half_h, angle, size: int) -> np.ndarray:
    """Masks ``[n, size, size]`` of n shapes (one per row of the parameter arrays).

    kind 1 rectangle (axis-aligned), 2 ellipse, 3 triangle, 4 cross; the others are
    rotated by ``angle``. A pixel belongs to a shape if its centre does. In the
    shape's own frame (u along the rotated x axis, v along the rotated y axis):

        rectangle  |u| <= a and |v| <= b
        ellipse    (u / a)^2 + (v / b)^2 <= 1
        triangle   apex (0, -b), base from (-a, b) to (a, b): |u| <= a (v + b) / 2b, v <= b
        cross      (|u| <= a and |v| <= b/3) or (|u| <= a/3 and |v| <= b)
    """
    x, y = _grid(size)
    kind = np.asarray(kind)
    params = [np.asarray(v, np.float32) for v in (cx, cy, half_w, half_h, angle)]
    masks = np.zeros((len(kind), size, size), dtype=bool)
    for k in np.unique(kind):  # each kind only on its own shapes
        rows = np.nonzero(kind == k)[0]
        cx, cy, a, b, angle = [v[rows, None, None] for v in params]
        if k == 1:
            angle = np.zeros_like(angle)
        cos, sin = np.cos(angle), np.sin(angle)
        dx, dy = x - cx, y - cy
        u, v = dx * cos + dy * sin, -dx * sin + dy * cos
        if k == 1:
            masks[rows] = (np.abs(u) <= a) & (np.abs(v) <= b)
        elif k == 2:
            masks[rows] = (u / a) ** 2 + (v / b) ** 2 <= 1
        elif k == 3:
            masks[rows] = (v <= b) & (np.abs(u) <= a * (v + b) / (2 * b))
        else:
            au, av = np.abs(u), np.abs(v)
            masks[rows] = ((au <= a) & (av <= b / 3)) | ((au <= a / 3) & (av <= b))
    return masks


def _shapes_chunk(rng, n, size, classes, min_objects, max_objects, size_range, min_visible,
                  noise):
    background = textured_background(rng, n, size)
    count = rng.integers(min_objects, max_objects + 1, n)
    active = np.arange(max_objects)[None, :] < count[:, None]
    kind = rng.choice(np.asarray(classes), (n, max_objects))
    lo, hi = size_range
    half = rng.uniform(lo / 2, hi / 2, (n, max_objects, 2)) * size
    centre = rng.uniform(0.1, 0.9, (n, max_objects, 2)) * size
    angle = rng.uniform(0, 2 * np.pi, (n, max_objects))
    colours = contrasting_colours(rng, background, max_objects)
    full = shape_masks(kind.ravel(), centre[..., 0].ravel(), centre[..., 1].ravel(),
                       half[..., 0].ravel(), half[..., 1].ravel(), angle.ravel(), size)
    full = full.reshape(n, max_objects, size, size)
    keep, visible = resolve_occlusion(full, active, min_visible)
    images = background
    for s in range(max_objects):  # bottom to top: later objects cover earlier ones
        shade = 1.0 + 0.1 * rng.standard_normal((n, 1, 1, 1)).astype(np.float32)
        paint = (full[:, s] & keep[:, s, None, None])[:, None]
        images = np.where(paint, colours[:, s, :, None, None] * shade, images)
    return _store(_finish_images(rng, images, noise), visible, keep, kind)


class ShapesDataset(SyntheticDetectionDataset):
    """Coloured shapes on a textured, noisy background: boxes, labels, instance and
    semantic masks. Deterministic from ``seed``.

    Args:
        num_images: how many images.
        image_size: side in pixels (64-128 typical).
        min_objects, max_objects: objects per image, uniform in that range (0 allowed).
        classes: which shapes to use, a subset of labels 1..4
            (1 rectangle, 2 ellipse, 3 triangle, 4 cross); the labels stay 1..4.
        size_range: object width and height as fractions of the image side.
        min_visible: drop an object when less than this fraction of it stays visible.
        noise: standard deviation of the Gaussian pixel noise.
    """

    classes = SHAPE_CLASSES

    def __init__(self, num_images: int = 1000, image_size: int = 64, min_objects: int = 1,
                 max_objects: int = 4, classes=(1, 2, 3, 4), size_range=(0.15, 0.45),
                 min_visible: float = 0.3, noise: float = 0.03, seed: int = 0):
        op = "ShapesDataset"
        _check_args(op, num_images, image_size, min_objects, max_objects, min_visible)
        classes = tuple(int(c) for c in classes)
        if not classes or any(c not in (1, 2, 3, 4) for c in classes):
            raise ValueError(f"{op}: classes must be a non-empty subset of (1, 2, 3, 4) "
                             f"= {SHAPE_CLASSES[1:]}, got {classes}")
        lo, hi = size_range
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"{op}: size_range must satisfy 0 < lo <= hi <= 1, got {size_range}")
        parts = [_shapes_chunk(np.random.default_rng([seed, c, 1]), stop - start, image_size,
                               classes, min_objects, max_objects, size_range, min_visible, noise)
                 for c, start, stop in _chunks(num_images)]
        super().__init__(*[np.concatenate(a) for a in zip(*parts)])
        self.seed = seed


# ---------------------------------------------------------------------------
# Digits on a canvas
# ---------------------------------------------------------------------------

def _digits_chunk(rng, n, size, pool_images, pool_labels, min_objects, max_objects,
                  size_range, min_visible, noise):
    background = textured_background(rng, n, size)
    count = rng.integers(min_objects, max_objects + 1, n)
    active = np.arange(max_objects)[None, :] < count[:, None]
    pick = rng.integers(0, len(pool_images), (n, max_objects))
    side = np.round(rng.uniform(size_range[0], size_range[1], (n, max_objects)) * size)
    side = side.astype(np.int64)
    x0 = (rng.uniform(0, 1, (n, max_objects)) * (size - side + 1)).astype(np.int64)
    y0 = (rng.uniform(0, 1, (n, max_objects)) * (size - side + 1)).astype(np.int64)
    colours = contrasting_colours(rng, background, max_objects)
    ink = np.zeros((n, max_objects, size, size), dtype=np.float32)
    for s in np.unique(side):  # one resize per digit size, all images at once
        img, slot = np.nonzero(side == s)
        glyphs = np.clip(resize_bilinear(pool_images[pick[img, slot]], int(s)), 0, 1)
        r = np.arange(s)
        ink[img[:, None, None], slot[:, None, None], (y0[img, slot][:, None] + r)[:, :, None],
            (x0[img, slot][:, None] + r)[:, None, :]] = glyphs
    full = ink > 0.35  # the digit's pixels; the faint rim only tints the background
    keep, visible = resolve_occlusion(full, active, min_visible)
    images = background
    for s in range(max_objects):
        alpha = (ink[:, s] * keep[:, s, None, None])[:, None]
        images = images * (1 - alpha) + colours[:, s, :, None, None] * alpha
    return _store(_finish_images(rng, images, noise), visible, keep, pool_labels[pick] + 1)


class DigitsDetection(SyntheticDetectionDataset):
    """The shipped UCI 8x8 digits, scaled up and placed on a textured canvas.

    Labels 1..10 stand for the digits 0..9 (0 = background). Digits come from the
    ``split`` of ``minidl.data.digits`` ('train' or 'test'), so a detector can be
    tested on digits it has never seen. Deterministic from ``seed``.

    Args: as ``ShapesDataset``; ``size_range`` is the digit side as a fraction of the
    image side.
    """

    classes = DIGIT_CLASSES

    def __init__(self, num_images: int = 1000, image_size: int = 64, min_objects: int = 1,
                 max_objects: int = 3, split: str = "train", size_range=(0.25, 0.45),
                 min_visible: float = 0.5, noise: float = 0.03, seed: int = 0):
        from minidl.data.digits import digits

        op = "DigitsDetection"
        _check_args(op, num_images, image_size, min_objects, max_objects, min_visible)
        lo, hi = size_range
        if not 0 < lo <= hi <= 1 or round(lo * image_size) < 8:
            raise ValueError(f"{op}: size_range must satisfy 0 < lo <= hi <= 1 with digits "
                             f"at least 8 px, got {size_range} for image_size {image_size}")
        pool_images, pool_labels = digits(split)
        pool_images = pool_images[:, 0]
        parts = [_digits_chunk(np.random.default_rng([seed, c, 2]), stop - start, image_size,
                               pool_images, pool_labels, min_objects, max_objects, size_range,
                               min_visible, noise)
                 for c, start, stop in _chunks(num_images)]
        super().__init__(*[np.concatenate(a) for a in zip(*parts)])
        self.seed, self.split = seed, split


# ---------------------------------------------------------------------------
# Stick figures with keypoints
# ---------------------------------------------------------------------------

def stick_figure_keypoints(rng: np.random.Generator, n: int, size: int,
                           height_range=(0.45, 0.8)) -> np.ndarray:
    """Random poses: keypoints ``[n, 14, 2]`` (x, y in pixels) in ``KEYPOINT_NAMES`` order.

    The figure is built outwards from the hips like a puppet: a torso of random
    lean, a head on the neck, and each arm and leg as two segments whose angles
    are drawn from ranges that look like people (arms anywhere, legs mostly down).
    """
    h = rng.uniform(*height_range, n) * size  # total height, feet to head
    torso, head = 0.32 * h, 0.12 * h
    upper_arm, fore_arm, thigh, shin = 0.16 * h, 0.15 * h, 0.22 * h, 0.22 * h
    lean = rng.uniform(-0.3, 0.3, n)  # radians from vertical
    hip_mid = np.stack([rng.uniform(0.25, 0.75, n) * size,
                        rng.uniform(0.5, 0.65, n) * size], axis=1)

    def step(start, length, angle):  # angle 0 = straight down, measured counter-clockwise
        return start + length[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)

    up = np.pi + lean
    neck = step(hip_mid, torso, up)
    head_pt = step(neck, head, up + rng.uniform(-0.3, 0.3, n))
    across = np.stack([np.cos(lean), -np.sin(lean)], axis=1)  # perpendicular to the torso
    points = {"head": head_pt, "neck": neck}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = neck + sign * (0.1 * h)[:, None] * across
        hip = hip_mid + sign * (0.07 * h)[:, None] * across
        arm = sign * rng.uniform(0.2, 2.6, n)
        elbow = step(shoulder, upper_arm, arm)
        hand = step(elbow, fore_arm, arm + sign * rng.uniform(-0.3, 1.5, n))
        leg = sign * rng.uniform(-0.15, 0.6, n)
        knee = step(hip, thigh, leg)
        foot = step(knee, shin, leg + sign * rng.uniform(-0.6, 0.2, n))
        points.update({f"{side}_shoulder": shoulder, f"{side}_elbow": elbow,
                       f"{side}_hand": hand, f"{side}_hip": hip, f"{side}_knee": knee,
                       f"{side}_foot": foot})
    return np.stack([points[k] for k in KEYPOINT_NAMES], axis=1).astype(np.float32)


def _segment_distance(x, y, p, q):
    """Distance from pixel centres (x [1, 1, W], y [1, H, 1]) to segments p-q ([n, 2] each)."""
    px, py = p[:, 0, None, None], p[:, 1, None, None]
    dx, dy = (q[:, 0] - p[:, 0])[:, None, None], (q[:, 1] - p[:, 1])[:, None, None]
    t = np.clip(((x - px) * dx + (y - py) * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    return np.hypot(x - px - t * dx, y - py - t * dy)


def stick_figure_masks(keypoints: np.ndarray, size: int, thickness: float) -> np.ndarray:
    """Masks ``[n, size, size]``: limbs as thick segments, the head as a disk."""
    x, y = _grid(size)
    mask = np.zeros((len(keypoints), size, size), dtype=bool)
    for a, b in SKELETON:
        mask |= _segment_distance(x, y, keypoints[:, a], keypoints[:, b]) <= thickness
    head = keypoints[:, _K["head"]]
    radius = 2.2 * thickness
    mask |= np.hypot(x - head[:, 0, None, None], y - head[:, 1, None, None]) <= radius
    return mask


def _figures_chunk(rng, n, size, min_objects, max_objects, min_visible, noise):
    background = textured_background(rng, n, size)
    count = rng.integers(min_objects, max_objects + 1, n)
    active = np.arange(max_objects)[None, :] < count[:, None]
    keypoints = stick_figure_keypoints(rng, n * max_objects, size).reshape(
        n, max_objects, len(KEYPOINT_NAMES), 2)
    thickness = max(1.0, 0.025 * size)
    full = stick_figure_masks(keypoints.reshape(-1, len(KEYPOINT_NAMES), 2), size, thickness)
    full = full.reshape(n, max_objects, size, size)
    keep, visible = resolve_occlusion(full, active, min_visible)
    colours = contrasting_colours(rng, background, max_objects)
    images = background
    for s in range(max_objects):
        paint = (full[:, s] & keep[:, s, None, None])[:, None]
        images = np.where(paint, colours[:, s, :, None, None], images)
    stored = _store(_finish_images(rng, images, noise), visible, keep,
                    np.ones((n, max_objects), np.int64))
    return stored + (_keypoint_visibility(keypoints, stored[1], size),)


def _keypoint_visibility(keypoints, instance_ids, size):
    """COCO's (x, y, v): v = 2 visible, 1 inside the image but covered by another figure
    (or background-coloured gap), 0 outside the image (then x = y = 0, as COCO stores it)."""
    n, slots, k, _ = keypoints.shape
    inside = ((keypoints >= 0) & (keypoints < size)).all(axis=-1)
    col = np.clip(keypoints[..., 0].astype(np.int64), 0, size - 1)
    row = np.clip(keypoints[..., 1].astype(np.int64), 0, size - 1)
    owner = instance_ids[np.arange(n)[:, None, None], row, col]  # which figure is seen there
    own = owner == (np.arange(slots)[None, :, None] + 1)
    v = np.where(inside, np.where(own, 2, 1), 0).astype(np.float32)
    xy = np.where(inside[..., None], keypoints, 0.0)
    return np.concatenate([xy, v[..., None]], axis=-1).astype(np.float32)


class StickFigures(SyntheticDetectionDataset):
    """Articulated stick figures for pose estimation: boxes, masks and 14 keypoints each.

    ``target["keypoints"]``: float32 ``[n, 14, 3]`` = (x, y, visibility) in
    ``KEYPOINT_NAMES`` order, visibility as COCO: 2 visible, 1 occluded, 0 outside the
    image. ``SKELETON`` lists the limbs as index pairs. Label 1 = person.
    """

    classes = PERSON_CLASSES
    keypoint_names = KEYPOINT_NAMES
    skeleton = SKELETON

    def __init__(self, num_images: int = 1000, image_size: int = 64, min_objects: int = 1,
                 max_objects: int = 2, min_visible: float = 0.3, noise: float = 0.03,
                 seed: int = 0):
        _check_args("StickFigures", num_images, image_size, min_objects, max_objects,
                    min_visible)
        parts = [_figures_chunk(np.random.default_rng([seed, c, 3]), stop - start, image_size,
                                min_objects, max_objects, min_visible, noise)
                 for c, start, stop in _chunks(num_images)]
        super().__init__(*[np.concatenate(a) for a in zip(*parts)])
        self.seed = seed


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------

def detection_collate(samples):
    """Batch detection samples: images stacked into a Tensor ``[N, 3, H, W]``, targets
    kept as a list of N dicts (each image has its own number of objects).

        DataLoader(dataset, batch_size=8, collate_fn=detection_collate)
    """
    if not samples:
        raise ValueError("detection_collate: got an empty batch")
    images = [np.asarray(getattr(image, "data", image)) for image, _ in samples]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"detection_collate: images must share one size to be stacked, "
                         f"got {sorted(shapes)}")
    return Tensor(np.stack(images)), [target for _, target in samples]
