"""A portfolio dataset (SPEC §8 "Data", "Clock"): K symbols on the sorted union of their bars.

Each member is an ordinary single-symbol `Dataset` (every §1 rule holds per symbol). The clock
`ts` is the sorted union of the members' timestamps; the aligned arrays are (bars, symbols),
C-ordered, read-only, with NaN in every OHLCV field where a symbol has no bar at a clock bar
(before its first bar, after its last, and in its gaps). `positions[k]` are the clock indices of
symbol k's own bars, so a feature computed on the symbol's own bars can be placed on the clock.
Symbols are held in sorted order; the identity hashes them in that order with each member's
content hash. `meta` holds the portfolio's facts (`PortfolioMeta`); each member keeps its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..synthetic_clock import MAX_CELLS as MAX_CELLS
from ..synthetic_clock import MAX_SYMBOLS as MAX_SYMBOLS
from ..timeframes import Calendar
from .meta import Dataset
from .portfolio_meta import PortfolioMeta, portfolio_meta

HASH_FORMAT = b"btlab-portfolio-v1"


def _frozen(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


@dataclass(frozen=True, eq=False)
class PortfolioDataset:
    """K >= 1 validated symbols aligned on one union clock. Arrays are read-only."""

    symbols: tuple[str, ...]
    members: Mapping[str, Dataset]
    ts: np.ndarray  # (n,) int64 ns, the union clock
    open: np.ndarray  # (n, K) float64, NaN where the symbol has no bar
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    positions: tuple[np.ndarray, ...]  # positions[k]: clock indices of symbol k's bars
    meta: PortfolioMeta
    _hash: list[str] = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def first_bar(self) -> np.ndarray:
        """(K,) int64: the clock index of each symbol's first bar (its listing)."""
        return np.array([int(p[0]) for p in self.positions], dtype=np.int64)

    @property
    def last_bar(self) -> np.ndarray:
        """(K,) int64: the clock index of each symbol's last bar (a delisting where < n - 1)."""
        return np.array([int(p[-1]) for p in self.positions], dtype=np.int64)

    @property
    def hash(self) -> str:
        """sha256 over a format tag and, in sorted symbol order, each symbol and its content hash."""
        if not self._hash:
            self._hash.append(portfolio_hash(self.symbols, self.members))
        return self._hash[0]

    def __repr__(self) -> str:
        shown = ", ".join(self.symbols[:5]) + (", ..." if len(self.symbols) > 5 else "")
        return (
            f"PortfolioDataset({len(self.symbols)} symbols [{shown}], {len(self)} clock bars, "
            f"hash={self.hash[:12]})"
        )


def portfolio_hash(symbols: tuple[str, ...], members: Mapping[str, Dataset]) -> str:
    """sha256 over a format tag and, in sorted symbol order, each symbol and its content hash."""
    h = hashlib.sha256()
    h.update(HASH_FORMAT)
    h.update(len(symbols).to_bytes(8, "little"))
    for symbol in sorted(symbols):
        name = symbol.encode()
        h.update(len(name).to_bytes(8, "little"))
        h.update(name)
        h.update(bytes.fromhex(members[symbol].hash))
    return h.hexdigest()


def from_members(
    members: Mapping[str, Dataset],
    *,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
    source: str | None = None,
) -> PortfolioDataset:
    """Align single-symbol datasets (symbol -> Dataset) on their union clock.

    `timeframe` / `calendar` are what the request declared (None: the members' shared timeframe,
    the calendar inferred from the clock); `source` labels the metadata (default: the members').
    Raises a `DataError` where there is no member, too many, a symbol name is blank, the clock x
    symbols is over `MAX_CELLS`, or the members' timeframes differ (naming the odd symbol).
    """
    if not members:
        raise DataError("portfolio_empty", "a portfolio needs at least one symbol")
    if len(members) > MAX_SYMBOLS:
        raise DataError(
            "portfolio_too_many_symbols",
            f"a portfolio holds at most {MAX_SYMBOLS:,} symbols, got {len(members):,}",
        )
    for symbol in members:
        if not isinstance(symbol, str) or not symbol.strip():
            raise DataError(
                "portfolio_symbol_name",
                f"portfolio symbol names must be non-empty text, got {symbol!r}",
            )
    symbols = tuple(sorted(members))
    ts = np.unique(np.concatenate([members[s].ts for s in symbols]))
    n, k = ts.shape[0], len(symbols)
    if n * k > MAX_CELLS:
        raise DataError(
            "portfolio_too_large",
            f"a portfolio holds at most {MAX_CELLS:,} clock bars x symbols (a run keeps about ten "
            f"such arrays in memory); {n:,} bars x {k:,} symbols is {n * k:,}",
        )
    arrays = {name: np.full((n, k), np.nan) for name in ("open", "high", "low", "close", "volume")}
    positions = []
    for j, symbol in enumerate(symbols):
        member = members[symbol]
        pos = np.searchsorted(ts, member.ts)
        for name, out in arrays.items():
            out[pos, j] = getattr(member, name)
        positions.append(_frozen(pos.astype(np.int64)))
    ordered = {s: members[s] for s in symbols}
    clock = _frozen(ts.astype(np.int64))
    identity = portfolio_hash(symbols, ordered)
    meta = portfolio_meta(symbols, ordered, clock, positions, portfolio_id=identity,
                          timeframe=timeframe, calendar=calendar, source=source)  # fmt: skip
    return PortfolioDataset(
        symbols=symbols,
        members=ordered,
        ts=clock,
        open=_frozen(arrays["open"]),
        high=_frozen(arrays["high"]),
        low=_frozen(arrays["low"]),
        close=_frozen(arrays["close"]),
        volume=_frozen(arrays["volume"]),
        positions=tuple(positions),
        meta=meta,
        _hash=[identity],
    )


def with_prices(
    data: PortfolioDataset,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
) -> PortfolioDataset:
    """`data` with other (n, K) prices on the same clock (e.g. a permuted path): NaN exactly
    where `data` has no bar, so each member keeps its timestamps and volume and takes its
    prices from its own clock bars; `adj_close` is dropped (it belongs to the real prices).
    The metadata (symbols, clock, gaps) is kept; the hash follows the new members."""
    arrays = {"open": open, "high": high, "low": low, "close": close}
    aligned = {name: _frozen(np.array(a, dtype=np.float64)) for name, a in arrays.items()}
    shape = data.close.shape
    for name, a in aligned.items():
        if a.shape != shape or not np.array_equal(np.isfinite(a), np.isfinite(data.close)):
            raise ValueError(
                f"{name} must be a {shape} array, finite exactly where the portfolio has bars"
            )
    members = {}
    for k, symbol in enumerate(data.symbols):
        own = {name: a[data.positions[k], k] for name, a in aligned.items()}
        members[symbol] = dataclasses.replace(data.members[symbol], adj_close=None, **own)
    return dataclasses.replace(
        data, members=members, _hash=[], open=aligned["open"], high=aligned["high"],
        low=aligned["low"], close=aligned["close"],
    )  # fmt: skip
