"""Drift statistics for `drift` criteria (PRODUCT.md §1): PSI on reference deciles, and the two-sample
Kolmogorov-Smirnov p-value.

Pure functions of samples (numpy and scipy, no Django, no clock). The reference period of a criterion
is fixed, so what the statistics need of it — the sorted sample for KS, the decile edges and bin shares
for PSI — is a `ReferenceProfile` computed once and kept (`readiness.scoring.drift.jobs` caches it);
each run then only bins and compares the current window. The caller decides whether the samples are
large enough to mean anything (`readiness.scoring.drift.jobs.DRIFT_MIN_SAMPLES`), and the engine turns
the number into a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# An empty bin has proportion 0, and PSI's ln(current / reference) is then ±inf. The usual fix (as in
# Evidently and most credit-risk PSI tooling) is to give an empty bin a tiny proportion instead. We use
# 1e-4 — replacing the 0, without renormalising the other bins — so one empty bin adds a large but finite
# term (a 10% bin that empties contributes ≈ 0.1 · ln(0.1 / 1e-4) ≈ 0.69, well past the 0.2 fail line),
# and bins empty on both sides contribute exactly 0.
EMPTY_BIN_PROPORTION = 1e-4
PSI_BINS = 10  # deciles (PRODUCT.md §1)
METHODS = ("psi", "ks")


@dataclass(frozen=True)
class ReferenceProfile:
    """What both statistics need of a reference sample.

    `sorted_sample` is the whole sample, ascending (KS compares empirical distribution functions, so it
    needs every value). `edges` are the inner bin edges at the reference quantiles 1/bins … (bins-1)/bins
    (numpy's default linear interpolation); the outer bins are open to ±inf, so every current value lands
    somewhere however far it drifted. `shares` are the reference's raw proportions per bin (zeros kept:
    a chart shows them as they are; PSI substitutes `EMPTY_BIN_PROPORTION` itself).
    """

    sorted_sample: np.ndarray
    edges: np.ndarray
    shares: np.ndarray

    @property
    def count(self) -> int:
        return int(self.sorted_sample.size)


@dataclass(frozen=True)
class DriftStatistic:
    value: float  # PSI, or the KS p-value
    current_shares: np.ndarray  # the current window's proportions in the reference's bins


def reference_profile(reference: Sequence[float] | np.ndarray, bins: int = PSI_BINS) -> ReferenceProfile:
    if bins < 2:
        raise ValueError(f"psi needs at least 2 bins; got {bins}")
    ordered = np.sort(_sample(reference, "reference"))
    edges = np.quantile(ordered, np.arange(1, bins) / bins)
    return ReferenceProfile(sorted_sample=ordered, edges=edges, shares=bin_shares(ordered, edges))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Proportions of `values` per bin; a bin holds `edge_lo <= x < edge_hi`."""
    # side="right": a value equal to an edge goes to the bin above it, matching np.histogram's [lo, hi).
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / values.size


def psi_of_shares(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """PSI = Σ (cur_i - ref_i) · ln(cur_i / ref_i) over the bins' proportions, empty bins at epsilon."""
    ref = np.where(reference_shares == 0, EMPTY_BIN_PROPORTION, reference_shares)
    cur = np.where(current_shares == 0, EMPTY_BIN_PROPORTION, current_shares)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def drift_statistic(method: str, profile: ReferenceProfile, current: Sequence[float]) -> DriftStatistic:
    """PSI or the KS p-value of `current` against a reference profile; the current bin shares come
    along for either method, so a dashboard can chart reference against current."""
    if method not in METHODS:
        raise ValueError(f"drift method must be one of {', '.join(METHODS)}; got {method!r}")
    cur = _sample(current, "current")
    shares = bin_shares(cur, profile.edges)
    if method == "psi":
        return DriftStatistic(psi_of_shares(profile.shares, shares), shares)
    # scipy's default exact/asymptotic choice; the reference is already sorted, which its sort exploits.
    pvalue = stats.ks_2samp(profile.sorted_sample, cur, alternative="two-sided").pvalue
    return DriftStatistic(float(pvalue), shares)


def psi(reference: Sequence[float], current: Sequence[float], bins: int = PSI_BINS) -> float:
    """Population Stability Index of `current` against `reference` on the reference's quantile bins."""
    profile = reference_profile(reference, bins)
    return psi_of_shares(profile.shares, bin_shares(_sample(current, "current"), profile.edges))


def ks_pvalue(reference: Sequence[float], current: Sequence[float]) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value (scipy's `ks_2samp`, its default exact/asymptotic
    choice): small means the two samples are unlikely to come from the same distribution."""
    ref, cur = _sample(reference, "reference"), _sample(current, "current")
    return float(stats.ks_2samp(ref, cur, alternative="two-sided").pvalue)


def _sample(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} sample must be a non-empty sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} sample contains NaN or infinite values")
    return array
