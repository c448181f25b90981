"""The synthetic provider (SPEC §1): seeded, deterministic bars that need no file.

Its identity is the hash of its canonical spec and `GENERATOR_VERSION` (see `spec_identity`), so
a request can be hashed without generating a bar. Timestamps follow the spec's calendar and stay
within what pandas can hold (`check_bounds`, used by the config model).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from btlab.kernels.synthetic import garch_returns_nb

from .config import SyntheticData
from .data import Dataset, _build, check_timestamps
from .errors import DataError
from .hashing import canonical_json, rng_for, sha256_hex
from .synthetic_clock import MAX_BARS as MAX_BARS
from .synthetic_clock import MAX_CELLS as MAX_CELLS
from .synthetic_clock import MAX_SYMBOLS as MAX_SYMBOLS
from .synthetic_clock import PORTFOLIO_FIELDS, timestamps
from .synthetic_clock import BoundsError as BoundsError
from .synthetic_clock import check_bounds as check_bounds
from .synthetic_clock import check_portfolio_bounds as check_portfolio_bounds
from .timeframes import periods_per_year, read_timeframe

#: Bump when the same spec would generate other bars: it is part of the synthetic identity.
GENERATOR_VERSION = 1
#: The spec fields that do not change the bars (a label, and an option that only errors).
_LABEL_FIELDS = ("symbol", "adjust")
GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
STUDENT_DF = 5.0


def spec_identity(spec: SyntheticData) -> str:
    """The synthetic dataset's identity: sha256 of its canonical spec (labels left out, the
    timeframe in its canonical spelling) and the generator version; no bar is generated."""
    single = spec.symbols == 1
    left_out = {*_LABEL_FIELDS, *PORTFOLIO_FIELDS} if single else set(_LABEL_FIELDS)
    fields = spec.model_dump(mode="json", exclude=left_out)
    if not single:
        fields["symbol_prefix"] = spec.symbol  # the symbols' names are part of the portfolio
    fields["timeframe"] = str(read_timeframe(spec.timeframe))
    text = canonical_json({"generator": f"btlab-synthetic-v{GENERATOR_VERSION}", "spec": fields})
    return sha256_hex(text.encode())


def garch_path(
    rng: np.random.Generator, n: int, mu: float, sigma_bar: float
) -> tuple[np.ndarray, np.ndarray]:
    """`n` log returns (and their GARCH(1,1) volatility) with Student-t innovations scaled to unit
    variance, around the per-bar drift `mu` and unconditional volatility `sigma_bar`."""
    z = rng.standard_t(STUDENT_DF, n) / math.sqrt(STUDENT_DF / (STUDENT_DF - 2.0))
    omega = sigma_bar**2 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    log_ret, sigma = garch_returns_nb(z, mu, omega, GARCH_ALPHA, GARCH_BETA)
    return log_ret, sigma


def bars_from_returns(
    rng: np.random.Generator,
    log_ret: np.ndarray,
    sigma: np.ndarray,
    start_price: float,
    zero_volume_prob: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(open, high, low, close, volume) of a close path with log returns `log_ret` (per-bar
    volatility `sigma`): an overnight gap at each open, a high and low beyond the open/close
    range, a volume that grows with the size of the move, `zero_volume_prob` of bars blanked."""
    n = int(log_ret.shape[0])
    close = np.exp(math.log(start_price) + np.cumsum(log_ret))
    # a share of each bar's move happens at the open (the gap), the rest during the bar
    gap_share = rng.uniform(0.0, 0.3, n)
    prev_close = np.concatenate([close[:1], close[:-1]])
    open_ = prev_close * np.exp(gap_share * log_ret + 0.1 * sigma * rng.standard_normal(n))
    body_high = np.maximum(open_, close)
    body_low = np.minimum(open_, close)
    high = body_high * np.exp(np.abs(rng.standard_normal(n)) * 0.5 * sigma)
    low = body_low * np.exp(-np.abs(rng.standard_normal(n)) * 0.5 * sigma)
    move = np.abs(log_ret) / np.maximum(sigma, 1e-12)
    volume = np.round(1e6 * np.exp(0.3 * rng.standard_normal(n)) * (0.6 + 0.4 * move))
    if zero_volume_prob > 0:
        volume[rng.uniform(0.0, 1.0, n) < zero_volume_prob] = 0.0
    return open_, high, low, close, volume


def generate(spec: SyntheticData | None = None, **overrides: Any) -> Dataset:
    """The embedded default dataset: seeded, deterministic, no file needed.

    Close follows a random walk in log price with GARCH(1,1) volatility clustering and Student-t
    innovations (fat tails) around the requested annual drift and volatility; each bar gets an
    overnight gap at its open, a high and low beyond the open/close range, and a volume that
    grows with the size of the move; `zero_volume_prob` blanks the volume of random bars.
    Everything comes from the generator seeded by `spec.seed` (not the run's root seed).
    """
    if spec is None or overrides:
        base = spec.model_dump() if spec is not None else {}
        spec = SyntheticData.model_validate({**base, **overrides})
    if spec.symbols > 1:
        raise DataError(
            "portfolio_spec",
            f"data.symbols = {spec.symbols} describes a portfolio of {spec.symbols} symbols, not "
            "one dataset: load it with btlab.portfolio.load_portfolio",
        )
    n = spec.bars
    ppy = periods_per_year(spec.timeframe, spec.calendar)
    rng = rng_for(spec.seed, "synthetic")
    log_ret, sigma = garch_path(rng, n, spec.drift_annual / ppy, spec.vol_annual / math.sqrt(ppy))
    log_ret[0] = 0.0
    open_, high, low, close, volume = bars_from_returns(
        rng, log_ret, sigma, spec.start_price, spec.zero_volume_prob
    )
    ts = timestamps(spec.start, n, spec.timeframe, spec.calendar)
    check_timestamps(ts)  # §1 holds for generated bars too
    if not np.isfinite(close).all():
        raise DataError(
            "non_finite_price",
            f"the synthetic close overflowed ({n:,} bars with drift {spec.drift_annual} and "
            f"volatility {spec.vol_annual}); use fewer bars or milder parameters",
        )
    return _build(ts, open_, high, low, close, volume, None, symbol=spec.symbol,
                  timeframe=spec.timeframe, calendar=spec.calendar, source="synthetic")  # fmt: skip
