"""Drift statistics: PSI on reference deciles and the two-sample KS p-value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from readiness.scoring.drift.stats import EMPTY_BIN_PROPORTION, ks_pvalue, psi


def _normal(seed: int, size: int = 5000, mean: float = 0.0, sd: float = 1.0) -> list[float]:
    return np.random.default_rng(seed).normal(mean, sd, size).tolist()


def _psi_by_histogram(reference: list[float], current: list[float], bins: int = 10) -> float:
    """PSI computed another way: np.percentile + np.histogram over (-inf, edges…, +inf)."""
    inner = np.percentile(reference, np.linspace(0, 100, bins + 1)[1:-1])
    edges = np.concatenate(([-np.inf], inner, [np.inf]))
    expected = np.histogram(reference, bins=edges)[0] / len(reference)
    actual = np.histogram(current, bins=edges)[0] / len(current)
    expected[expected == 0] = 1e-4
    actual[actual == 0] = 1e-4
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def test_psi_of_identical_samples_is_zero() -> None:
    sample = _normal(1)
    assert psi(sample, sample) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_two_samples_of_one_distribution_is_below_0_01() -> None:
    assert psi(_normal(1), _normal(2)) < 0.01


def test_psi_of_normal_shifted_by_one_sd_is_above_0_2() -> None:
    assert psi(_normal(1), _normal(2, mean=1.0)) > 0.2


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (_normal(3), _normal(4, mean=0.3, sd=1.2)),
        (_normal(5, size=200), _normal(6, size=50, mean=-0.5)),
        # Ties: integer data repeats decile edges, so some bins are empty on both sides.
        (
            np.random.default_rng(7).integers(0, 4, 1000).tolist(),
            np.random.default_rng(8).integers(0, 6, 700).tolist(),
        ),
    ],
)
def test_psi_matches_an_independent_numpy_computation(reference: list[float], current: list[float]) -> None:
    assert psi(reference, current) == pytest.approx(_psi_by_histogram(reference, current), rel=1e-12)


def test_psi_bins_parameter_uses_that_many_quantiles() -> None:
    reference, current = _normal(9), _normal(10, mean=0.2)
    assert psi(reference, current, bins=5) == pytest.approx(_psi_by_histogram(reference, current, bins=5))


def test_psi_gives_empty_current_bins_the_epsilon_proportion() -> None:
    reference = [float(x) for x in range(100)]  # ten reference bins of 10% each
    current = [0.0] * 50  # everything in the lowest decile
    eps = EMPTY_BIN_PROPORTION
    expected = (1.0 - 0.1) * math.log(1.0 / 0.1) + 9 * (eps - 0.1) * math.log(eps / 0.1)
    assert psi(reference, current) == pytest.approx(expected)


def test_psi_outer_bins_catch_values_far_outside_the_reference_range() -> None:
    value = psi(_normal(11), [1e9] * 100)
    assert math.isfinite(value) and value > 0.2


@pytest.mark.parametrize(
    ("reference", "current"),
    [([], [1.0]), ([1.0], []), ([1.0, math.nan], [1.0]), ([1.0], [math.inf])],
)
def test_psi_rejects_empty_or_non_finite_samples(reference: list[float], current: list[float]) -> None:
    with pytest.raises(ValueError, match="sample"):
        psi(reference, current)


def test_psi_rejects_fewer_than_two_bins() -> None:
    with pytest.raises(ValueError, match="2 bins"):
        psi([1.0, 2.0], [1.0, 2.0], bins=1)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (_normal(12, size=300), _normal(13, size=300)),
        (_normal(14, size=40), _normal(15, size=25, mean=0.8)),
        (_normal(16, size=2000), _normal(17, size=1500, sd=1.3)),
    ],
)
def test_ks_pvalue_matches_scipy_two_sided(reference: list[float], current: list[float]) -> None:
    expected = stats.ks_2samp(reference, current, alternative="two-sided").pvalue
    assert ks_pvalue(reference, current) == pytest.approx(expected, rel=1e-12)


def test_ks_pvalue_is_tiny_for_a_shifted_distribution() -> None:
    assert ks_pvalue(_normal(18, size=500), _normal(19, size=500, mean=1.0)) < 0.05


def test_ks_pvalue_is_large_for_the_same_distribution() -> None:
    assert ks_pvalue(_normal(20, size=500), _normal(21, size=500)) > 0.05


def test_ks_pvalue_rejects_empty_samples() -> None:
    with pytest.raises(ValueError, match="sample"):
        ks_pvalue([], [1.0])
