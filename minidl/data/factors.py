"""Images made from known factors of variation, and a score of how a code captures them.

A small cousin of dSprites (Matthey et al. 2017): one coloured shape on a
black square image, every image fixed by five discrete factors,

    shape  3 values   square, circle, triangle (the same area at the same size)
    size   4 values   half-width 0.14 .. 0.23 of the image
    colour 4 values   red, green, blue, yellow (pure channels: each pixel is 0 or 1)
    x      8 values   the centre's column, evenly spaced so the largest shape fits
    y      8 values   the centre's row

3 x 4 x 4 x 8 x 8 = 3,072 different images. Because the factors are known, a
representation learned without them (e.g. a beta-VAE's latent code) can be
scored against them: ``mutual_information_gap``.

    images, factors = factors_dataset(seed=0)     # every combination once, shuffled
    images: float32 [N, 3, S, S] in {0, 1};  factors: int64 [N, 5], column k in 0..FACTOR_SIZES[k]-1
"""

from __future__ import annotations

import numpy as np

FACTOR_NAMES = ("shape", "size", "colour", "x", "y")
FACTOR_SIZES = (3, 4, 4, 8, 8)
SHAPE_NAMES = ("square", "circle", "triangle")
COLOUR_NAMES = ("red", "green", "blue", "yellow")
COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32)

_HALF_WIDTHS = np.linspace(0.14, 0.23, FACTOR_SIZES[1])  # of the square, in image widths


def _check_factors(factors) -> np.ndarray:
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES) or factors.dtype.kind not in "iu":
        raise ValueError(f"factor_images: factors must be an int array [N, {len(FACTOR_NAMES)}] "
                         f"({', '.join(FACTOR_NAMES)}), got {factors.dtype} {factors.shape}")
    for k, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
        if factors.size and not 0 <= factors[:, k].min() <= factors[:, k].max() < size:
            raise ValueError(f"factor_images: factor {name!r} must be in 0..{size - 1}, got "
                             f"{factors[:, k].min()}..{factors[:, k].max()}")
    return factors


def factor_images(factors, image_size: int = 16) -> np.ndarray:
    """Draw one image per row of ``factors`` [N, 5]: float32 [N, 3, S, S] with S = image_size.

    All images at once: the pixel grid minus each centre gives dx, dy [N, S, S];
    each shape is an inequality on them, at the same area 4 r^2 for half-width r:

        square    |dx| <= r and |dy| <= r
        circle    dx^2 + dy^2 <= R^2,               R = 2 r / sqrt(pi)
        triangle  -h <= dy <= h, |dx| <= (dy + h) / 2,   h = sqrt(2) r  (apex up)
    """
    factors = _check_factors(factors)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or image_size < 8:
        raise ValueError(f"factor_images: image_size must be an int >= 8, got {image_size!r}")
    shape, size, colour, x, y = factors.T
    r = _HALF_WIDTHS[size][:, None, None] * image_size
    # Centres evenly spaced so that the largest triangle (reach sqrt(2) r) stays inside.
    margin = np.sqrt(2) * _HALF_WIDTHS[-1] * image_size
    positions = np.linspace(margin, image_size - margin, FACTOR_SIZES[3])
    pixel = np.arange(image_size) + 0.5  # pixel centres
    dx = pixel[None, None, :] - positions[x][:, None, None]
    dy = pixel[None, :, None] - positions[y][:, None, None]
    square = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    circle = dx ** 2 + dy ** 2 <= (2 * r / np.sqrt(np.pi)) ** 2
    h = np.sqrt(2) * r
    triangle = (np.abs(dy) <= h) & (np.abs(dx) <= (dy + h) / 2)
    mask = np.select([shape[:, None, None] == k for k in range(3)], [square, circle, triangle])
    return (mask[:, None] * COLOURS[colour][:, :, None, None]).astype(np.float32)


def all_factors() -> np.ndarray:
    """Every combination of the factors once, in order: int64 [3072, 5]."""
    grids = np.meshgrid(*[np.arange(n) for n in FACTOR_SIZES], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)


def factors_dataset(num_images: int | None = None, seed: int = 0, image_size: int = 16):
    """(images float32 [N, 3, S, S], factors int64 [N, 5]), the same for the same seed.

    ``num_images=None``: every combination once (as dSprites), in an order shuffled
    by ``seed``. A number: that many combinations drawn uniformly (with repeats).
    """
    rng = np.random.default_rng(seed)
    if num_images is None:
        factors = rng.permutation(all_factors())
    else:
        if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) \
                or num_images < 1:
            raise ValueError(f"factors_dataset: num_images must be a positive int or None, "
                             f"got {num_images!r}")
        factors = np.stack([rng.integers(0, n, num_images) for n in FACTOR_SIZES], axis=1)
    return factor_images(factors, image_size), factors


# ---- scoring a representation against the factors -----------------------------------
def _discretize(codes: np.ndarray, bins: int) -> np.ndarray:
    """Each column of ``codes`` [N, D] cut into ``bins`` equal-width bins over its range."""
    low, high = codes.min(axis=0), codes.max(axis=0)
    width = np.where(high > low, (high - low) / bins, 1.0)
    return np.minimum(((codes - low) / width).astype(np.int64), bins - 1)


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two int arrays [N], from their joint histogram."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= len(a)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log(joint[seen] / outer[seen])))


def mutual_information(codes, factors, bins: int = 20) -> np.ndarray:
    """I(code_j; factor_k) in nats for every code dimension j and factor k: [D, K].

    codes: float [N, D] (e.g. a VAE encoder's means); factors: int [N, K]. Each
    code dimension is discretized into ``bins`` equal-width bins (the histogram
    estimator of Locatello et al. 2019, "Challenging Common Assumptions in the
    Unsupervised Learning of Disentangled Representations").
    """
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors) or not len(codes):
        raise ValueError(f"mutual_information: codes [N, D] and factors [N, K] with the same N "
                         f"> 0, got {codes.shape} and {factors.shape}")
    if factors.dtype.kind not in "iu" or factors.min() < 0:
        raise ValueError("mutual_information: factors must be non-negative ints")
    binned = _discretize(codes, bins)
    return np.array([[_mutual_information(binned[:, j], factors[:, k])
                      for k in range(factors.shape[1])] for j in range(codes.shape[1])])


def entropy(factors) -> np.ndarray:
    """H(factor_k) in nats for each column of an int array [N, K]."""
    factors = np.asarray(factors)
    return np.array([_mutual_information(column, column) for column in factors.T])


def mutual_information_gap(codes, factors, bins: int = 20):
    """The MIG of Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement
    in Variational Autoencoders": for each factor, the gap between the two code
    dimensions that know most about it, as a fraction of all there is to know,

        MIG = 1/K sum_k (I(z_a; v_k) - I(z_b; v_k)) / H(v_k),
              a, b = the code dimensions with the largest and second-largest I(z_j; v_k).

    1 when each factor is read off one dimension that no other dimension shares;
    0 when no dimension knows more about a factor than the next best one (the
    factor is spread over several, or is not coded at all).

    Returns (MIG, the gap of each factor [K], the mutual information [D, K]).
    Needs at least two code dimensions.
    """
    mi = mutual_information(codes, factors, bins)
    if mi.shape[0] < 2:
        raise ValueError("mutual_information_gap: needs at least 2 code dimensions")
    top_two = -np.sort(-mi, axis=0)[:2]
    gaps = (top_two[0] - top_two[1]) / entropy(factors)
    return float(gaps.mean()), gaps, mi
