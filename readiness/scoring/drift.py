"""Drift statistics for `drift` criteria (PRODUCT.md §1): PSI on reference deciles, and the two-sample
Kolmogorov-Smirnov p-value.

Pure functions of two samples; the caller decides whether the samples are large enough to mean
anything (`readiness.scoring.inputs.DRIFT_MIN_SAMPLES`), and the engine turns the number into a status.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

# An empty bin has proportion 0, and PSI's ln(current / reference) is then ±inf. The usual fix (as in
# Evidently and most credit-risk PSI tooling) is to give an empty bin a tiny proportion instead. We use
# 1e-4 — replacing the 0, without renormalising the other bins — so one empty bin adds a large but finite
# term (a 10% bin that empties contributes ≈ 0.1 · ln(0.1 / 1e-4) ≈ 0.69, well past the 0.2 fail line),
# and bins empty on both sides contribute exactly 0.
EMPTY_BIN_PROPORTION = 1e-4


def psi(reference: Sequence[float], current: Sequence[float], bins: int = 10) -> float:
    """Population Stability Index of `current` against `reference`.

    Bins are the reference's quantiles (deciles for the default 10 bins): inner edges at the reference
    quantiles 1/bins … (bins-1)/bins (numpy's default linear interpolation), the outer bins open to ±inf
    so every current value lands somewhere however far it drifted. A bin holds `edge_lo <= x < edge_hi`.
    PSI = Σ (cur_i - ref_i) · ln(cur_i / ref_i) over the bins' proportions.
    """
    ref, cur = _sample(reference, "reference"), _sample(current, "current")
    if bins < 2:
        raise ValueError(f"psi needs at least 2 bins; got {bins}")
    edges = np.quantile(ref, np.arange(1, bins) / bins)
    ref_share, cur_share = _shares(ref, edges, bins), _shares(cur, edges, bins)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def ks_pvalue(reference: Sequence[float], current: Sequence[float]) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value (scipy's `ks_2samp`, its default exact/asymptotic
    choice): small means the two samples are unlikely to come from the same distribution."""
    ref, cur = _sample(reference, "reference"), _sample(current, "current")
    return float(stats.ks_2samp(ref, cur, alternative="two-sided").pvalue)


def _shares(values: np.ndarray, edges: np.ndarray, bins: int) -> np.ndarray:
    # side="right": a value equal to an edge goes to the bin above it, matching np.histogram's [lo, hi).
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=bins)
    shares = counts / len(values)
    return np.where(counts == 0, EMPTY_BIN_PROPORTION, shares)


def _sample(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} sample must be a non-empty sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} sample contains NaN or infinite values")
    return array
