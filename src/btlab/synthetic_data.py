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
from .synthetic_clock import BoundsError as BoundsError
from .synthetic_clock import check_bounds as check_bounds
from .synthetic_clock import timestamps
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
    fields = spec.model_dump(mode="json", exclude=set(_LABEL_FIELDS))
    fields["timeframe"] = str(read_timeframe(spec.timeframe))
    text = canonical_json({"generator": f"btlab-synthetic-v{GENERATOR_VERSION}", "spec": fields})
    return sha256_hex(text.encode())


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
    n = spec.bars
    ppy = periods_per_year(spec.timeframe, spec.calendar)
    rng = rng_for(spec.seed, "synthetic")
    sigma_bar = spec.vol_annual / math.sqrt(ppy)
    # fat-tailed innovations scaled to unit variance
    z = rng.standard_t(STUDENT_DF, n) / math.sqrt(STUDENT_DF / (STUDENT_DF - 2.0))
    mu = spec.drift_annual / ppy
    omega = sigma_bar**2 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    log_ret, sigma = garch_returns_nb(z, mu, omega, GARCH_ALPHA, GARCH_BETA)
    log_ret[0] = 0.0
    log_close = math.log(spec.start_price) + np.cumsum(log_ret)
    close = np.exp(log_close)
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
    if spec.zero_volume_prob > 0:
        volume[rng.uniform(0.0, 1.0, n) < spec.zero_volume_prob] = 0.0
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
