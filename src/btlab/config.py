"""The run request: one pydantic model per section, every field with a default and a description.

`RunConfig` is the whole request. Leaving a field out and giving its default are the same request
(the config hash is taken over the model with every default filled in). Strategy and feature
parameters are validated against their registries' schemas and stored with defaults filled in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from .errors import ConfigError, DataError, pydantic_message
from .features import FeatureSpec as FeatureSpec
from .portfolio_strategies import is_portfolio_strategy, resolve_portfolio_strategy_params
from .request_model import HashOmitDefault, RequestModel, hash_payload
from .strategies import resolve_strategy_params
from .synthetic_clock import MAX_SYMBOLS, BoundsError, check_bounds, check_portfolio_bounds
from .targets import TARGETS_STRATEGY, resolve_targets_params
from .timeframes import parse_timeframe

#: Upper bounds of money amounts and sizes: far above any real account, far below where float
#: arithmetic on them loses the cents (a cost of 1e12 against 1e5 of cash is a typo, not a test).
MAX_CASH = 1e12
MAX_FEE = 1e9
MAX_UNITS = 1e9


def _check_timeframe(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_timeframe(value)
    except DataError as exc:
        raise ValueError(str(exc).removeprefix("bad_timeframe: ")) from None
    return value.strip().lower()


CalendarName = Literal["equities", "24x5", "24x7"]

_CALENDAR_TEXT = (
    "'equities': weekday exchange sessions, 252 days a year (synthetic intraday: 6.5 h from "
    "14:30 UTC); '24x5': weekdays round the clock, as FX, 260 days; '24x7': every day, all day, "
    "365 days"
)


class SyntheticData(RequestModel):
    """The embedded default dataset: seeded, deterministic, no file needed."""

    source: Literal["synthetic"] = Field(
        "synthetic", description="Generate a seeded synthetic dataset."
    )
    symbol: str = Field(
        "SYN", min_length=1, max_length=64, description="Symbol name recorded in the metadata."
    )
    bars: int = Field(
        2520,
        ge=2,
        description="Number of bars to generate (at most 10,000,000, and no later than pandas' "
        "last date, 2262-04-11).",
    )
    start: datetime = Field(datetime(2015, 1, 2), description="Timestamp of the first bar (UTC).")
    timeframe: str = Field(
        "1d", description="Bar length: e.g. 1m, 5m, 15m, 1h, 4h, 1d, 1w, 1mo (month), 1q."
    )
    calendar: CalendarName = Field("equities", description=_CALENDAR_TEXT + ".")
    seed: int = Field(
        7, ge=0, description="Seed of the generator (independent of the run's root seed)."
    )
    start_price: float = Field(100.0, gt=0, description="Price of the first bar.")
    drift_annual: float = Field(0.06, ge=-5, le=5, description="Annual log drift of the close.")
    vol_annual: float = Field(0.2, gt=0, le=5, description="Annual volatility of the close.")
    zero_volume_prob: float = Field(
        0.0, ge=0, lt=1, description="Probability that a bar trades no volume."
    )
    adjust: bool = Field(
        False,
        description="Scale OHLC by adj_close/close (synthetic data has no adj_close: an error).",
    )
    # A portfolio (SPEC §8): `symbols` > 1 generates K symbols from one market factor; the
    # fields below apply only then (at `symbols` = 1 they must keep their defaults).
    symbols: int = Field(
        1,
        ge=1,
        description="Number of symbols: 1 is one dataset; K > 1 a portfolio of K correlated "
        "symbols named `symbol` + 01..K from a one-factor model whose factor follows drift_annual "
        "and vol_annual (at most 5,000 symbols and 20,000,000 bars x symbols).",
    )
    beta_mean: float = Field(
        1.0, ge=-3, le=3, description="Portfolio: mean beta of the symbols to the market factor."
    )
    beta_spread: float = Field(
        0.3,
        ge=0,
        le=3,
        description="Portfolio: each symbol's beta is drawn uniformly within beta_mean ± this.",
    )
    idio_vol_annual: float = Field(
        0.25,
        gt=0,
        le=5,
        description="Portfolio: mean annual volatility of each symbol's own (idiosyncratic) part.",
    )
    idio_vol_spread: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="Portfolio: each symbol's idiosyncratic volatility is drawn uniformly within "
        "idio_vol_annual × (1 ± this).",
    )
    list_within: float = Field(
        0.0,
        ge=0,
        lt=0.9,
        description="Portfolio: symbols list at seeded dates within this share of the first bars "
        "(0: every symbol from the first bar; the earliest always lists at the first bar).",
    )
    delist_within: float = Field(
        0.0,
        ge=0,
        lt=0.9,
        description="Portfolio: symbols delist at seeded dates within this share of the last bars "
        "(0: none delists; the latest always trades to the last bar).",
    )
    missing_bar_prob: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="Portfolio: probability that a listed symbol has no bar at a clock bar (a "
        "halt); its first and last bars are always there.",
    )

    _timeframe = field_validator("timeframe")(_check_timeframe)

    @model_validator(mode="after")
    def _fits(self) -> SyntheticData:
        try:
            check_bounds(self.bars, self.start, self.timeframe, self.calendar)
            check_portfolio_bounds(self)
        except BoundsError as exc:
            raise ConfigError("invalid request", [(exc.field, str(exc))]) from None
        return self


class FileData(RequestModel):
    """A CSV or Parquet file on this machine."""

    source: Literal["csv", "parquet"] = Field(description="File format.")
    path: str = Field(
        min_length=1,
        description="Path of the file; for a portfolio (btlab.portfolio.load_portfolio) also a "
        "long file (with a `symbol` column) or a folder of files, one symbol per file stem.",
    )
    symbol: str | None = Field(
        None, description="Symbol name (default: the file's stem; not for a folder or long file)."
    )
    timeframe: str | None = Field(
        None, description="Bar length (default: inferred from the timestamps)."
    )
    calendar: CalendarName | None = Field(
        None, description=f"Calendar (default: inferred from the timestamps): {_CALENDAR_TEXT}."
    )
    adjust: bool = Field(
        False, description="Scale OHLC by adj_close/close; an error where there is no adj_close."
    )

    _timeframe = field_validator("timeframe")(_check_timeframe)


#: The most files of a portfolio request: one per symbol.
MAX_PORTFOLIO_FILES = MAX_SYMBOLS


class FileListData(RequestModel):
    """Several CSV or Parquet files on this machine: a portfolio (SPEC §8), one symbol per file
    named by its stem, or several from a file with a `symbol` column (a long table)."""

    source: Literal["csv", "parquet"] = Field(description="File format of every file.")
    paths: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        max_length=MAX_PORTFOLIO_FILES,
        description="Paths of the files (at most 5,000); the same symbol in two files is an error.",
    )
    timeframe: str | None = Field(
        None, description="Bar length of every symbol (default: inferred; all must agree)."
    )
    calendar: CalendarName | None = Field(
        None, description=f"Calendar (default: inferred from the union clock): {_CALENDAR_TEXT}."
    )
    adjust: bool = Field(
        False,
        description="Scale each symbol's OHLC by adj_close/close; an error where one has no "
        "adj_close.",
    )

    _timeframe = field_validator("timeframe")(_check_timeframe)

    @field_validator("paths")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for path in value:
            if path in seen:
                raise ValueError(f"{path!r} is listed twice")
            seen.add(path)
        return value


class StoredData(RequestModel):
    """A dataset already imported into the btlab home (by `btlab data import` or `POST /datasets`)."""

    source: Literal["dataset"] = Field(description="A stored dataset.")
    id: str = Field(min_length=1, description="The dataset's id (its content hash).")
    timeframe: str | None = Field(
        None, description="Bar length (default: as stored, given at import or inferred)."
    )
    calendar: CalendarName | None = Field(
        None,
        description=f"Calendar (default: as stored, given at import or inferred): {_CALENDAR_TEXT}.",
    )
    adjust: bool = Field(
        False, description="Scale OHLC by adj_close/close; an error where there is no adj_close."
    )

    _timeframe = field_validator("timeframe")(_check_timeframe)


def _data_source(value: Any) -> str:
    """The data section's kind; a section without `source` is the synthetic default, and csv or
    parquet with `paths` (a list of files) is `files`."""
    if isinstance(value, FileListData):
        return "files"
    if isinstance(value, Mapping):
        source = str(value.get("source", "synthetic"))
        return "files" if source in ("csv", "parquet") and "paths" in value else source
    return str(getattr(value, "source", "synthetic"))


DataConfig = Annotated[
    Annotated[SyntheticData, Tag("synthetic")]
    | Annotated[FileData, Tag("csv")]
    | Annotated[FileData, Tag("parquet")]
    | Annotated[FileListData, Tag("files")]
    | Annotated[StoredData, Tag("dataset")],
    Discriminator(
        _data_source,
        custom_error_type="unknown_data_source",
        custom_error_message="data.source must be one of: synthetic, csv, parquet, dataset",
    ),
]


class StrategyConfig(RequestModel):
    """The strategy and its parameters (validated against the strategy's schema): a registered
    single-symbol strategy (run on each symbol of a portfolio, weighted 1/K) or a portfolio
    strategy (run on one symbol as a portfolio of one), or the reserved `targets`: the targets
    of a dataset column (`params.column`) or handed to `btlab.run(..., targets=...)`."""

    name: str = Field(
        "sma_cross", description="A strategy name from the registry (GET /registry), single-symbol "
        "or portfolio.",
    )  # fmt: skip
    params: dict[str, Any] = Field(default_factory=dict, description="The strategy's parameters.")

    @model_validator(mode="after")
    def _check_registry(self) -> StrategyConfig:
        if self.name == TARGETS_STRATEGY:  # reserved: targets from the caller or a data column
            filled = resolve_targets_params(self.params)
        elif is_portfolio_strategy(self.name):
            filled = resolve_portfolio_strategy_params(self.name, self.params)
        else:
            filled = resolve_strategy_params(self.name, self.params)
        object.__setattr__(self, "params", filled)
        return self


class ExecutionConfig(RequestModel):
    """How orders fill and what they cost (SPEC §3)."""

    initial_cash: float = Field(100_000.0, gt=0, le=MAX_CASH, description="Starting cash.")
    fill: Literal["open", "close"] = Field(
        "open", description="Fill at the bar's open (default) or close; T+1 either way."
    )
    rebalance: Literal["on_change", "every_bar", "daily", "weekly", "monthly", "quarterly"] = Field(
        "on_change",
        description="When orders are placed: where a target changes (on_change), every bar, "
        "or only at the first bar of each new UTC day, week (from Monday), month or quarter "
        "(a target changed in between waits for it; every position is re-sized there).",
    )
    spread_bps: float = Field(
        0.0, ge=0, le=10_000, description="Bid-ask spread in bps; each fill pays half."
    )
    slippage_bps: float = Field(
        0.0, ge=0, le=10_000, description="Slippage per fill in bps of the reference price."
    )
    commission_bps: float = Field(
        0.0, ge=0, le=10_000, description="Commission in bps of the filled notional."
    )
    commission_fixed: float = Field(0.0, ge=0, le=MAX_FEE, description="Fixed commission per fill.")
    commission_min: float = Field(0.0, ge=0, le=MAX_FEE, description="Minimum commission per fill.")
    borrow_rate_annual: float = Field(
        0.0, ge=0, le=10, description="Annual borrow rate of shorts (calendar time, 365 days)."
    )
    skip_zero_volume: bool = Field(True, description="Orders wait for the next bar with volume.")
    lot_size: float = Field(
        0.0,
        ge=0,
        le=MAX_UNITS,
        description="Round order sizes toward zero to this lot (0: fractional units).",
    )
    close_at_end: bool = Field(
        True, description="Close an open position at the last bar's close (reason 'end')."
    )


class RiskConfig(RequestModel):
    """Sizing and risk limits (SPEC §3)."""

    sizing: Literal["fraction", "units", "vol_target"] = Field(
        "fraction",
        description="Target as a fraction of equity, times a unit count, or scaled to a volatility target.",
    )
    units: float = Field(
        1.0, gt=0, le=MAX_UNITS, description="Units per 1.0 of target when sizing = 'units'."
    )
    vol_target_annual: float = Field(
        0.15, gt=0, le=5, description="Annual volatility aimed at when sizing = 'vol_target'."
    )
    vol_lookback: int = Field(
        20, ge=2, le=10_000, description="Bars of shifted returns behind the realized volatility."
    )
    max_leverage: float = Field(
        1.0, gt=0, le=100, description="Cap on |units * price| / equity at every order."
    )
    stop_loss: float | None = Field(
        None, gt=0, lt=1, description="Stop-loss as a fraction of the entry price."
    )
    take_profit: float | None = Field(
        None, gt=0, le=100, description="Take-profit as a fraction of the entry price."
    )
    max_drawdown: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Halt: close at the next open and stop trading once the drawdown reaches this.",
    )


class MetricsConfig(RequestModel):
    """How metrics are computed (SPEC §5)."""

    periods_per_year: float | None = Field(
        None,
        gt=0,
        le=1e8,
        description="Bars per year for annualizing; inferred from the timeframe and calendar when unset.",
    )
    benchmark: Annotated[Literal["auto", "none"], HashOmitDefault()] = Field(
        "auto",
        description="What the run is measured against (benchmark_return, alpha, beta, ...): "
        '"auto" is the buy-and-hold of the traded symbol, or for a portfolio the equal-weight '
        'index of its symbols rebalanced every bar (frictionless); "none" turns it off. From '
        "Python, run(..., benchmark=series) measures against a series of your own.",
    )


class BootstrapConfig(RequestModel):
    enabled: bool = Field(True, description="Run the stationary bootstrap of per-bar returns.")
    n_resamples: int = Field(1000, ge=10, le=100_000, description="Bootstrap resamples.")
    mean_block_length: float | None = Field(
        None,
        gt=0,
        le=1e8,
        description="Mean block length in bars (default: round(n ** (1/3)), at least 1).",
    )
    confidence: float = Field(
        0.95, gt=0, lt=1, description="Confidence level of the Sharpe interval."
    )


class PermutationConfig(RequestModel):
    enabled: bool = Field(True, description="Run the Monte Carlo permutation test.")
    n_permutations: int = Field(
        100, ge=1, le=100_000, description="Permuted price paths to re-run."
    )


class FoldsConfig(RequestModel):
    enabled: bool = Field(True, description="Compute metrics on contiguous time folds.")
    k: int = Field(5, ge=2, le=100, description="Number of folds.")


class ValidationConfig(RequestModel):
    """Validation statistics written to validation.json (SPEC §6)."""

    enabled: bool = Field(True, description="Run validation at all.")
    psr: bool = Field(
        True, description="Probabilistic and deflated Sharpe ratios, minimum track record length."
    )
    n_trials: int = Field(
        1, ge=1, le=10**9, description="Trials behind this result, for the deflated Sharpe ratio."
    )
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    permutation: PermutationConfig = Field(default_factory=PermutationConfig)
    folds: FoldsConfig = Field(default_factory=FoldsConfig)


class RunConfig(RequestModel):
    """One backtest request: data, features, strategy, execution, risk, metrics, validation, seed."""

    data: DataConfig = Field(default_factory=SyntheticData, description="Where the bars come from.")
    features: list[FeatureSpec] = Field(
        default_factory=list,
        description="Extra features to compute (strategies declare what they need themselves).",
    )
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    seed: int = Field(
        0, ge=0, le=2**63 - 1, description="Root seed: every random draw derives from it."
    )

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: list[FeatureSpec]) -> list[FeatureSpec]:
        keys = [f.key() for f in value]
        if len(set(keys)) != len(keys):
            raise ValueError("the same feature with the same parameters is listed twice")
        return value

    def hash_payload(self) -> dict[str, Any]:
        """The request as hashed: every default filled in, file locations left out (content counts)."""
        payload = hash_payload(self)
        payload["data"].pop("path", None)
        payload["data"].pop("paths", None)
        payload["data"].pop("id", None)
        return payload


_DATA_TAGS = ("synthetic", "csv", "parquet", "files", "dataset")


def _loc(parts: Sequence[int | str]) -> str:
    parts = list(parts)
    if len(parts) > 1 and parts[0] == "data" and parts[1] in _DATA_TAGS:
        del parts[1]  # the discriminated union's tag is not a field the user wrote
    return ".".join(str(p) for p in parts) or "request"


def field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) pairs of a request's validation error, one per bad field.

    A registry check inside a validator (strategy or feature parameters) raises a ConfigError
    whose own field paths are spliced in, so a bad parameter is named in full, e.g.
    `strategy.params.fast`, and pydantic's "Value error, " prefix is dropped.
    """
    return [pair for err in exc.errors() for pair in error_fields(err)]


def error_fields(err: Any) -> list[tuple[str, str]]:
    """The (field path, message) pairs of one pydantic error dict (see `field_errors`)."""
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, ConfigError) and inner.errors:
        return [(_loc([*err["loc"], *loc.split(".")]), msg) for loc, msg in inner.errors]
    return [(_loc(err["loc"]), pydantic_message(err))]


def parse_config(obj: RunConfig | Mapping[str, Any] | None = None) -> RunConfig:
    """A `RunConfig` from a mapping (or None for all defaults), or a ConfigError naming each bad field."""
    if isinstance(obj, RunConfig):
        return obj
    if obj is not None and not isinstance(obj, Mapping):
        raise ConfigError(
            "invalid request", [("request", f"expected a JSON object, got {type(obj).__name__}")]
        )
    try:
        return RunConfig.model_validate(dict(obj or {}))
    except ValidationError as exc:
        raise ConfigError("invalid request", field_errors(exc)) from None


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in depth (mappings merge, anything else replaces)."""
    merged: dict[str, Any] = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged
