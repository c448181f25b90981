"""The Sharpe ratio and its inference: moments, PSR, DSR, the minimum track record length
(Bailey & López de Prado 2012, 2014)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from ..metrics import annualized_ratio
from .inputs import finite_returns

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def sharpe(returns: np.ndarray, periods_per_year: float | None = None) -> float:
    """mean / std(ddof=1) per bar, times sqrt(periods_per_year) when given; NaN if n < 2 or std = 0."""
    r = finite_returns(returns)
    if r.size < 2 or np.ptp(r) == 0.0:  # constant returns: no variance, whatever std rounds to
        return math.nan
    scale = math.sqrt(periods_per_year) if periods_per_year is not None else 1.0
    return annualized_ratio(float(np.mean(r)), float(np.std(r, ddof=1)), scale)


def moments(returns: np.ndarray) -> dict[str, float]:
    """Per-bar Sharpe, biased skewness and raw biased kurtosis (3 for a normal), and n."""
    r = finite_returns(returns)
    n = r.size
    out = {"n": float(n), "sharpe_per_bar": sharpe(r), "skew": math.nan, "kurtosis": math.nan}
    if n >= 2 and np.ptp(r) > 0.0:
        d = r - np.mean(r)
        d2 = d * d  # powers by products: `d**3` calls pow() per element, ~10x slower
        m2 = float(np.mean(d2))
        if m2 > 0.0:
            out["skew"] = float(np.mean(d2 * d)) / m2**1.5
            out["kurtosis"] = float(np.mean(d2 * d2)) / (m2 * m2)
    return out


def _sr_dispersion(sr: float, skew: float, kurtosis: float) -> float:
    """1 - γ3·SR + (γ4 - 1)/4·SR² (never negative for real data since γ4 >= 1 + γ3²)."""
    return 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr


def sr_estimator_variance(sr: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Asymptotic variance of the per-bar Sharpe estimator: (1 - γ3·SR + (γ4-1)/4·SR²) / (T - 1)."""
    if n_obs < 2:
        return math.nan
    return _sr_dispersion(sr, skew, kurtosis) / (n_obs - 1)


def psr_from_moments(
    sr: float, n_obs: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0
) -> float:
    """PSR(SR*) = Φ((SR - SR*)·sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4·SR²)), per-bar SR, raw kurtosis."""
    disp = _sr_dispersion(sr, skew, kurtosis)
    if n_obs < 2 or not disp > 0.0 or not math.isfinite(sr):
        return math.nan
    return _NORMAL.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(disp))


def min_trl_from_moments(
    sr: float, skew: float, kurtosis: float, sr_benchmark: float = 0.0, prob: float = 0.95
) -> float:
    """MinTRL = 1 + (1 - γ3·SR + (γ4 - 1)/4·SR²)·(Φ⁻¹(prob) / (SR - SR*))², in bars; inf if SR <= SR*."""
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    disp = _sr_dispersion(sr, skew, kurtosis)
    if not math.isfinite(sr) or not disp > 0.0:
        return math.nan
    if sr <= sr_benchmark:
        return math.inf
    return 1.0 + disp * (_NORMAL.inv_cdf(prob) / (sr - sr_benchmark)) ** 2


def psr(returns: np.ndarray, sr_benchmark: float = 0.0) -> float:
    """Probabilistic Sharpe ratio of per-bar `returns` against the per-bar benchmark `sr_benchmark`."""
    m = moments(returns)
    return psr_from_moments(
        m["sharpe_per_bar"], int(m["n"]), m["skew"], m["kurtosis"], sr_benchmark
    )


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """E[max SR] of N zero-skill trials: sqrt(V)·((1-γ)Φ⁻¹(1 - 1/N) + γΦ⁻¹(1 - 1/(N·e))); 0 for N = 1."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sr_variance < 0.0 or not math.isfinite(sr_variance):
        raise ValueError(f"sr_variance must be finite and >= 0, got {sr_variance}")
    if n_trials == 1:
        return 0.0
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def dsr_parts(
    m: dict[str, float], n_trials: int, sr_variance: float | None
) -> tuple[float, float, float]:
    """(DSR, SR* used, variance used) from moments."""
    sr, n = m["sharpe_per_bar"], int(m["n"])
    if sr_variance is None:
        sr_variance = sr_estimator_variance(sr, n, m["skew"], m["kurtosis"])
    if n_trials == 1:
        bench = 0.0
    elif math.isfinite(sr_variance):
        bench = expected_max_sharpe(n_trials, sr_variance)
    else:
        return math.nan, math.nan, sr_variance
    return psr_from_moments(sr, n, m["skew"], m["kurtosis"], bench), bench, sr_variance


def dsr(returns: np.ndarray, n_trials: int, sr_variance: float | None = None) -> float:
    """Deflated Sharpe ratio: PSR against SR* = expected_max_sharpe(n_trials, sr_variance).

    `sr_variance` is the variance of the per-bar Sharpe ratios across the trials (a sweep passes
    the variance of its trials' Sharpes). When not given it defaults to the asymptotic variance
    of the Sharpe estimator at the observed SR, `(1 - γ3·SR + (γ4-1)/4·SR²) / (T - 1)`: the
    spread of trial Sharpes expected from sampling noise alone. For `n_trials = 1` the DSR is
    `psr(returns, 0)`.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    return dsr_parts(moments(returns), n_trials, sr_variance)[0]


def min_track_record_length(
    returns: np.ndarray, sr_benchmark: float = 0.0, prob: float = 0.95
) -> float:
    """Bars of track record needed for PSR(sr_benchmark) >= prob at the observed moments (inf if SR <= SR*)."""
    m = moments(returns)
    return min_trl_from_moments(m["sharpe_per_bar"], m["skew"], m["kurtosis"], sr_benchmark, prob)
