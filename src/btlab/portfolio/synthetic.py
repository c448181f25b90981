"""The synthetic provider's portfolio (SPEC §8 "Data"): K seeded symbols from one market factor.

Each symbol's log return is `r[i, k] = beta_k * f[i] + e[i, k]`. The factor `f` is the
single-symbol provider's GARCH(1,1) / Student-t path around the spec's `drift_annual` and
`vol_annual`; each idiosyncratic part `e[:, k]` is another such path, with no drift, at the
symbol's own volatility. `beta_k` is drawn uniformly within `beta_mean ± beta_spread`, the
idiosyncratic volatility within `idio_vol_annual × (1 ± idio_vol_spread)`, so two symbols'
returns correlate about `beta_j beta_k vf² / sqrt((beta_j² vf² + v_j²)(beta_k² vf² + v_k²))`
(`vf` the factor's volatility, `v` the idiosyncratic ones). The bars around each close path are
built as the single-symbol provider builds them (`synthetic_data.bars_from_returns`).

Every draw comes from generators seeded by the spec's `seed`: one for the factor, one per
symbol (so a symbol's loadings and bars do not depend on how many symbols follow it), one for
the listing dates. On request symbols list and delist at seeded dates (`list_within`,
`delist_within`: the earliest lists at the first bar, the latest trades to the last, so the
clock is `bars` long), and listed symbols miss random bars (`missing_bar_prob`, halts).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import SyntheticData
from ..data import Dataset, _build, check_timestamps
from ..data.portfolio import PortfolioDataset, from_members
from ..errors import DataError
from ..hashing import rng_for
from ..synthetic_clock import timestamps
from ..synthetic_data import bars_from_returns, garch_path
from ..timeframes import periods_per_year


def symbol_names(spec: SyntheticData) -> list[str]:
    """`spec.symbol` + 01..K (zero-padded to the width of K, at least two digits)."""
    width = max(2, len(str(spec.symbols)))
    return [f"{spec.symbol}{k:0{width}d}" for k in range(1, spec.symbols + 1)]


def _symbol_rng(spec: SyntheticData, k: int) -> np.random.Generator:
    return rng_for(spec.seed, f"synthetic-portfolio-symbol-{k}")


def _loadings(spec: SyntheticData, rng: np.random.Generator) -> tuple[float, float]:
    beta = spec.beta_mean + spec.beta_spread * float(rng.uniform(-1.0, 1.0))
    idio = spec.idio_vol_annual * (1.0 + spec.idio_vol_spread * float(rng.uniform(-1.0, 1.0)))
    return beta, idio


def factor_loadings(spec: SyntheticData) -> tuple[np.ndarray, np.ndarray]:
    """(K,) betas to the factor and (K,) annual idiosyncratic volatilities, in symbol order."""
    drawn = [_loadings(spec, _symbol_rng(spec, k)) for k in range(1, spec.symbols + 1)]
    return np.array([b for b, _ in drawn]), np.array([v for _, v in drawn])


def expected_correlation(spec: SyntheticData) -> np.ndarray:
    """(K, K) the correlation of the symbols' log returns the one-factor model implies."""
    beta, idio = factor_loadings(spec)
    common = np.outer(beta, beta) * spec.vol_annual**2
    total = np.sqrt(beta**2 * spec.vol_annual**2 + idio**2)
    out: np.ndarray = common / np.outer(total, total)
    np.fill_diagonal(out, 1.0)
    return out


def listing_spans(spec: SyntheticData) -> tuple[np.ndarray, np.ndarray]:
    """(K,) first bar and (K,) end (exclusive) of each symbol on the `bars`-long clock."""
    n, k = spec.bars, spec.symbols
    rng = rng_for(spec.seed, "synthetic-portfolio-listing")
    first = np.zeros(k, dtype=np.int64)
    end = np.full(k, n, dtype=np.int64)
    if spec.list_within > 0:
        first = rng.integers(0, int(spec.list_within * n) + 1, k)
        first -= first.min()
    if spec.delist_within > 0:
        early = rng.integers(0, int(spec.delist_within * n) + 1, k)
        end = n - (early - early.min())
    return first.astype(np.int64), end.astype(np.int64)


def generate_portfolio(spec: SyntheticData) -> PortfolioDataset:
    """K = `spec.symbols` correlated symbols on one calendar (see the module's docstring)."""
    n = spec.bars
    ppy = periods_per_year(spec.timeframe, spec.calendar)
    factor, factor_sigma = garch_path(
        rng_for(spec.seed, "synthetic-portfolio-factor"),
        n,
        spec.drift_annual / ppy,
        spec.vol_annual / math.sqrt(ppy),
    )
    ts = timestamps(spec.start, n, spec.timeframe, spec.calendar)
    check_timestamps(ts)  # §1 holds for generated bars too
    first, end = listing_spans(spec)
    members: dict[str, Dataset] = {}
    for k, symbol in enumerate(symbol_names(spec)):
        rng = _symbol_rng(spec, k + 1)
        beta, idio = _loadings(spec, rng)
        own, own_sigma = garch_path(rng, n, 0.0, idio / math.sqrt(ppy))
        log_ret = beta * factor + own
        log_ret[0] = 0.0
        sigma = np.sqrt(beta**2 * factor_sigma**2 + own_sigma**2)
        open_, high, low, close, volume = bars_from_returns(
            rng, log_ret, sigma, spec.start_price, spec.zero_volume_prob
        )
        if not np.isfinite(close).all():
            raise DataError(
                "non_finite_price",
                f"symbol {symbol!r}: the synthetic close overflowed ({n:,} bars, beta {beta:.2f}, "
                f"idiosyncratic volatility {idio:.2f}); use fewer bars or milder parameters",
            )
        keep = np.zeros(n, dtype=bool)
        keep[first[k] : end[k]] = True
        if spec.missing_bar_prob > 0:
            halted = rng.uniform(0.0, 1.0, n) < spec.missing_bar_prob
            halted[first[k]] = halted[end[k] - 1] = False
            keep &= ~halted
        members[symbol] = _build(ts[keep], open_[keep], high[keep], low[keep], close[keep],
                                 volume[keep], None, symbol=symbol, timeframe=spec.timeframe,
                                 calendar=spec.calendar, source="synthetic")  # fmt: skip
    return from_members(
        members, timeframe=spec.timeframe, calendar=spec.calendar, source="synthetic"
    )
