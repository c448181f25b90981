"""What one run produced (`RunResult`), the identity of its data, and what its own numbers say
about it (`halt_status`, `outcome_warnings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd

from btlab.kernels.dtypes import REASON_NAMES, Flag

from .config import RunConfig
from .data import Dataset
from .metrics import bar_return_bars, drawdown_path
from .result_display import result_html, result_repr, result_title
from .result_plot import plot_run
from .result_stats import result_stats
from .run_warnings import RunWarning, undefined_metric_warnings, when

__all__ = [
    "DataIdentity", "Outcome", "RunResult", "halt_status", "outcome_warnings", "returns_series",
]  # fmt: skip


@dataclass(eq=False)
class RunResult:
    """Everything one run produced. Arrays are the source of truth; frames are views built on demand."""

    config: RunConfig
    config_hash: str
    dataset: Dataset
    target: np.ndarray
    units: np.ndarray
    cash: np.ndarray
    equity_values: np.ndarray
    borrow: np.ndarray
    fill_records: np.ndarray
    trade_records: np.ndarray
    metrics: dict[str, Any]
    validation: dict[str, Any] | None
    flags: int
    halt_bar: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: What makes this result degenerate (short data, no trades, undefined numbers, ruin...).
    warnings: list[RunWarning] = field(default_factory=list)
    identity: DataIdentity | None = None  # the data's identity in the config hash
    #: The benchmark's equity per bar (`btlab.benchmark`), None where it is off.
    benchmark_equity: np.ndarray | None = None

    @property
    def ruined(self) -> bool:
        return bool(self.flags & Flag.RUINED)

    @property
    def halted(self) -> bool:
        return bool(self.flags & Flag.HALTED_MAX_DRAWDOWN)

    def __repr__(self) -> str:
        return result_repr(self)

    def _repr_html_(self) -> str:
        return result_html(self)

    def stats(self) -> pd.Series:
        """The metrics as backtesting.py's `Backtest.run()` names and orders them (docs/python.md,
        "In a notebook"), then btlab's own."""
        return result_stats(self)

    def plot(self) -> Any:
        """An interactive Plotly figure: equity, drawdown, exposure (`pip install 'btlab[plot]'`)."""
        return plot_run(self, result_title(self))

    def exposure_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(price, units) whose |product| / equity is the exposure per bar (a portfolio's are
        ones and its gross value): what the statistics kernels read."""
        return self.dataset.close, self.units

    def _ts(self, bars: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.dataset.ts[bars].astype("datetime64[ns]"), tz="UTC")

    @property
    def returns(self) -> pd.Series:
        """The per-bar simple returns of the equity, quantstats-ready (`returns_series`)."""
        return returns_series(self.dataset.ts, self.equity_values)

    @cached_property
    def equity(self) -> pd.DataFrame:
        """Per bar: ts, target, units, cash, equity, exposure, drawdown, borrow, close (the
        price the bar is marked at: the report draws it with the fills), and the benchmark's
        equity (`benchmark`) where it is on."""
        eq = self.equity_values
        with np.errstate(divide="ignore", invalid="ignore"):
            exposure = self.units * self.dataset.close / eq
        drawdown = drawdown_path(eq)
        frame = pd.DataFrame(
            {
                "ts": self._ts(np.arange(eq.shape[0])),
                "target": self.target,
                "units": self.units,
                "cash": self.cash,
                "equity": eq,
                "exposure": exposure,
                "drawdown": drawdown,
                "borrow": self.borrow,
                "close": self.dataset.close,
            }
        )
        if self.benchmark_equity is not None:
            frame["benchmark"] = self.benchmark_equity
        return frame

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Per fill: ts, bar, side, units, price, fill price, cost parts, reason, position after."""
        f = self.fill_records
        return pd.DataFrame(
            {
                "ts": self._ts(f["bar"]),
                "bar": f["bar"],
                "side": np.where(f["units"] > 0, "buy", "sell"),
                "units": np.abs(f["units"]),
                "price": f["price"],
                "fill_price": f["fill_price"],
                "spread_cost": f["spread_cost"],
                "slippage_cost": f["slippage_cost"],
                "commission": f["commission"],
                "reason": np.array(REASON_NAMES, dtype=object)[f["reason"]]
                if f.size
                else np.array([], dtype=object),
                "position_after": f["position_after"],
            }
        )

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Per round trip: entry/exit ts and price, side, units, P&L, return, bars held, costs, exit reason."""
        t = self.trade_records
        reasons = np.array([*REASON_NAMES, "open"], dtype=object)  # index -1 -> "open"
        return pd.DataFrame(
            {
                "entry_ts": self._ts(t["entry_bar"]),
                "exit_ts": self._ts(t["exit_bar"]),
                "side": np.where(t["side"] > 0, "long", "short"),
                "units": t["units"],
                "entry_price": t["entry_price"],
                "exit_price": t["exit_price"],
                "gross_pnl": t["gross_pnl"],
                "costs": t["costs"],
                "borrow": t["borrow"],
                "net_pnl": t["net_pnl"],
                "return": t["return_"],
                "bars_held": t["bars_held"],
                "exit_reason": reasons[t["exit_reason"]] if t.size else np.array([], dtype=object),
            }
        )


def returns_series(ts: np.ndarray, equity: np.ndarray) -> pd.Series:
    """The per-bar simple returns `equity[i] / equity[i-1] - 1` the validation reads
    (`metrics.bar_return_bars`: the finite ones, from the second bar on), as a float64 Series
    named "returns" on a DatetimeIndex of the bars' timestamps.

    The index is tz-naive and in UTC: what quantstats (checked with 0.0.86) makes of any index
    itself (an aware one is converted to UTC and its zone dropped); its Sharpe and volatility at
    `periods=metrics["periods_per_year"]` are the run's. A new Series on each call: a caller
    that changes it changes nothing the result holds.
    """
    bars, values = bar_return_bars(equity)
    index = pd.DatetimeIndex(ts[bars].astype("datetime64[ns]"), name="ts")
    return pd.Series(values, index=index, name="returns")


@dataclass(frozen=True)
class DataIdentity:
    """What makes data "the same" for the config hash: its identity, not where it was found.

    `id` is the content hash of the bars (files, stored datasets, DataFrames) or, for the
    synthetic provider, the hash of its canonical spec (`synthetic_data.spec_identity`), so a
    synthetic request hashes without generating a bar. Symbol and file path are labels.
    """

    id: str
    timeframe: str
    calendar: str
    adjust: bool
    #: (sha256, shape) of targets handed to `run(..., targets=...)`, which join the config hash
    targets: tuple[str, tuple[int, ...]] | None = None

    def payload(self) -> dict[str, Any]:
        return {"identity": self.id, "timeframe": self.timeframe, "calendar": self.calendar,
                "adjust": self.adjust}  # fmt: skip


class _Bars(Protocol):
    @property
    def ts(self) -> np.ndarray: ...


class Outcome(Protocol):
    """What `halt_status` and `outcome_warnings` read of a result (a single-symbol run's or a
    portfolio's)."""

    config: RunConfig
    metrics: dict[str, Any]
    halt_bar: int

    @property
    def dataset(self) -> _Bars: ...
    @property
    def ruined(self) -> bool: ...
    @property
    def halted(self) -> bool: ...


def halt_status(result: Outcome) -> str | None:
    """ "ruined at <ts>: ..." or "halted at <ts>: ..." where trading stopped early, else None."""
    if not (result.ruined or result.halted):
        return None
    at = when(result.dataset.ts[result.halt_bar])
    if result.ruined:
        return f"ruined at {at}: equity <= 0, trading halted"
    limit = result.config.risk.max_drawdown or 0.0
    return f"halted at {at}: drawdown reached risk.max_drawdown ({limit:.2%}), trading halted"


def outcome_warnings(result: Outcome) -> list[RunWarning]:
    """Ruin or halt, no trades, undefined metrics: what the run's own numbers say."""
    m = result.metrics
    out: list[RunWarning] = []
    status = halt_status(result)
    if status is not None and result.ruined:
        out.append(
            RunWarning(
                "ruined",
                f"{status} (bar {result.halt_bar}; the position was closed at that close; final "
                f"equity {m['final_equity']:,.2f}). max_drawdown and the drawdown column stop at "
                "-100 %; the loss beyond the capital stays in final_equity and total_return",
            )
        )
    elif status is not None:
        out.append(
            RunWarning(
                "halted",
                f"{status} (bar {result.halt_bar}; the position was closed at the next open)",
            )
        )
    if m["fill_count"] == 0:
        out.append(
            RunWarning(
                "no_trades",
                f"the strategy never traded in {m['n_bars']} bars: the equity is the initial "
                "cash throughout and every trade statistic is undefined",
            )
        )
    elif m["trade_count"] == 0:
        out.append(
            RunWarning(
                "no_closed_trades",
                "no round trip closed (the position is still open at the end: "
                "execution.close_at_end is off), so the trade statistics are undefined",
            )
        )
    return out + undefined_metric_warnings(m)
