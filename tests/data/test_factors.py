"""The factors data set: reproducible from a seed, every combination once, each factor visible
in the image the way its name says; the mutual information and MIG against hand-made cases."""

import math

import numpy as np
import pytest

from minidl.data.factors import (
    COLOURS,
    FACTOR_SIZES,
    all_factors,
    entropy,
    factor_images,
    factors_dataset,
    mutual_information,
    mutual_information_gap,
)

SHAPE, SIZE, COLOUR, X, Y = range(5)


@pytest.fixture(scope="module")
def dataset():
    return factors_dataset(seed=0)


def test_every_combination_once_and_the_same_for_the_same_seed(dataset):
    images, factors = dataset
    assert images.shape == (3072, 3, 16, 16) and images.dtype == np.float32
    assert factors.shape == (3072, 5) and factors.dtype == np.int64
    assert len({tuple(row) for row in factors}) == 3072 == math.prod(FACTOR_SIZES)
    again_images, again_factors = factors_dataset(seed=0)
    assert np.array_equal(again_images, images) and np.array_equal(again_factors, factors)
    other = factors_dataset(seed=1)[1]
    assert not np.array_equal(other, factors)
    assert sorted(map(tuple, other)) == sorted(map(tuple, factors))


def test_sampled_factors_are_in_range_and_reproducible():
    images, factors = factors_dataset(500, seed=3, image_size=20)
    assert images.shape == (500, 3, 20, 20)
    assert np.all(factors >= 0) and np.all(factors < np.array(FACTOR_SIZES))
    assert np.array_equal(factors_dataset(500, seed=3, image_size=20)[1], factors)
    for k, n in enumerate(FACTOR_SIZES):  # each value appears, none dominates
        counts = np.bincount(factors[:, k], minlength=n)
        assert counts.min() > 0.5 * 500 / n


def test_pixels_are_black_or_the_factors_colour(dataset):
    images, factors = dataset
    assert set(np.unique(images)) == {0.0, 1.0}
    lit = images.max(axis=1) > 0  # [N, S, S]
    for i in range(0, 3072, 97):
        colours = images[i][:, lit[i]].T  # the colour of every lit pixel
        assert np.all(colours == COLOURS[factors[i, COLOUR]])
    assert lit.sum(axis=(1, 2)).min() > 10  # every shape is drawn


def test_area_grows_with_size_and_is_about_equal_across_shapes(dataset):
    images, factors = dataset
    area = (images.max(axis=1) > 0).sum(axis=(1, 2))
    mean_area = np.array([[area[(factors[:, SHAPE] == s) & (factors[:, SIZE] == z)].mean()
                           for z in range(FACTOR_SIZES[SIZE])] for s in range(3)])
    assert np.all(np.diff(mean_area, axis=1) > 0)
    assert np.all(mean_area.max(axis=0) < 1.25 * mean_area.min(axis=0))


def test_the_centre_moves_with_x_and_y_and_the_shape_stays_inside(dataset):
    images, factors = dataset
    lit = images.max(axis=1) > 0
    grid = np.arange(16) + 0.5
    column = (lit * grid[None, None, :]).sum(axis=(1, 2)) / lit.sum(axis=(1, 2))
    row = (lit * grid[None, :, None]).sum(axis=(1, 2)) / lit.sum(axis=(1, 2))
    for values, k in ((column, X), (row, Y)):
        means = [values[factors[:, k] == v].mean() for v in range(FACTOR_SIZES[k])]
        assert np.all(np.diff(means) > 0.5)
    # Nothing is cut at the border: the largest shape at the extreme positions is whole.
    big = factors[:, SIZE] == FACTOR_SIZES[SIZE] - 1
    for k in (X, Y):
        low = big & (factors[:, k] == 0)
        high = big & (factors[:, k] == FACTOR_SIZES[k] - 1)
        assert (lit[low].sum(axis=(1, 2)).mean()
                == pytest.approx(lit[high].sum(axis=(1, 2)).mean(), rel=0.05))


def test_shapes_differ_at_equal_size_and_position():
    factors = np.array([[s, 3, 0, 4, 4] for s in range(3)])
    masks = factor_images(factors).max(axis=1) > 0
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    # the triangle points up: its top rows are narrower than its bottom rows
    rows = masks[2].sum(axis=1)
    lit_rows = rows[rows > 0]
    assert lit_rows[0] < lit_rows[-1]


def test_all_factors_order():
    factors = all_factors()
    assert factors.shape == (3072, 5)
    assert np.array_equal(factors[0], [0, 0, 0, 0, 0])
    assert np.array_equal(factors[1], [0, 0, 0, 0, 1])
    assert np.array_equal(factors[-1], np.array(FACTOR_SIZES) - 1)


def test_bad_factors_and_sizes():
    with pytest.raises(ValueError, match="factor 'colour' must be in 0..3"):
        factor_images(np.array([[0, 0, 4, 0, 0]]))
    with pytest.raises(ValueError, match=r"an int array \[N, 5\]"):
        factor_images(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="image_size must be an int >= 8"):
        factor_images(np.zeros((1, 5), dtype=np.int64), image_size=4)
    with pytest.raises(ValueError, match="num_images must be a positive int"):
        factors_dataset(0)


# ---- mutual information and MIG -------------------------------------------------
def test_mutual_information_of_a_small_table_by_hand():
    """code bins (0, 0, 1, 1) against factors a = (0, 0, 1, 1) and b = (0, 1, 0, 1)."""
    codes = np.array([[0.0], [0.0], [1.0], [1.0]])
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    mi = mutual_information(codes, factors, bins=2)
    np.testing.assert_allclose(mi, [[math.log(2), 0.0]], atol=1e-12)
    np.testing.assert_allclose(entropy(factors), [math.log(2), math.log(2)])
    # a 3-to-1 split: I = H(a) = -(3/4 log 3/4 + 1/4 log 1/4)
    skewed = np.array([[0], [0], [0], [1]])
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert mutual_information(skewed.astype(float), skewed)[0, 0] == pytest.approx(h)


def test_mig_is_one_for_the_factors_themselves_whatever_their_order_and_scale():
    factors = all_factors()
    codes = factors[:, ::-1] * np.array([3.0, -1.0, 0.5, 10.0, 2.0]) + 7
    mig, gaps, mi = mutual_information_gap(codes, factors)
    assert mig == pytest.approx(1.0) and np.allclose(gaps, 1.0)
    np.testing.assert_allclose(mi[::-1].diagonal(), entropy(factors))


def test_mig_drops_when_two_factors_share_dimensions_and_is_near_zero_for_noise():
    factors = all_factors()
    codes = factors.astype(float)
    mixed = codes.copy()
    mixed[:, X], mixed[:, Y] = codes[:, X] + codes[:, Y], codes[:, X] - codes[:, Y]
    mig_mixed, gaps, _ = mutual_information_gap(mixed, factors)
    assert gaps[X] < 0.3 and gaps[Y] < 0.3 and np.allclose(gaps[:3], 1.0)
    assert mig_mixed < 0.75
    noise = np.random.default_rng(0).normal(size=(len(factors), 6))
    assert mutual_information_gap(noise, factors)[0] < 0.02


def test_mig_errors():
    with pytest.raises(ValueError, match="at least 2 code dimensions"):
        mutual_information_gap(np.zeros((4, 1)), np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="same N"):
        mutual_information(np.zeros((4, 2)), np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="non-negative ints"):
        mutual_information(np.zeros((4, 2)), np.zeros((4, 2)))
