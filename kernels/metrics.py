"""Per-path statistics (SPEC §5), the heavy part of every run's metrics (their sums in NumPy's
order come from `pairwise.py`)."""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit
from .pairwise import (
    _pairwise_block_nb,
    _walk_leaf_nb,
    _walk_start_nb,
    _walk_up_nb,
    np_sum_nb,
    pairwise_stack,
)


@njit
def _drawdown_gate_nb(peak, max_dd):
    """Equity above this cannot set a new max drawdown: `peak * (1 + max_dd + 1e-9)`, where the
    1e-9 margin dwarfs the rounding of the product; +inf (always check) for a peak <= 0."""
    return peak * (1.0 + (max_dd + 1e-9)) if peak > 0.0 else np.inf


@njit
def drawdown_stats_nb(equity):
    """`(max_drawdown, max_dd_duration_bars)` of `equity`: `min(equity / cummax(equity) - 1)`
    and the longest run of bars below the running peak (a bar back at the peak has recovered).

    The division `e / peak - 1` is done only where it can set a new minimum: never at or above
    the peak (drawdown 0), never for a bar equal to the one before (the same value), never
    above the gate `peak * (1 + max_dd + 1e-9)`. The result is the full division's, exactly.
    The bars go 128 at a time through `_drawdown_span_nb` (as `path_stats_nb`'s leaves).
    """
    n = equity.shape[0]
    peak, gate, max_dd, under, longest = -np.inf, np.inf, 0.0, 0, 0
    for lo in range(0, n, 128):
        peak, gate, max_dd, under, longest = _drawdown_span_nb(
            equity, lo, min(128, n - lo), peak, gate, max_dd, under, longest
        )
    return max_dd, longest


@njit
def _drawdown_step_nb(e, first, prev, peak, gate, max_dd, under, longest):
    """One bar of `drawdown_stats_nb`: equity `e` (`first`: the first bar; `prev` the bar
    before), `(peak, gate, max_dd, under, longest)` in and out. Scalars only, so it inlines."""
    if e >= peak:
        peak, under = e, 0
        gate = _drawdown_gate_nb(e, max_dd)
    else:
        under += 1
        if under > longest:
            longest = under
        if (first or e != prev) and not e > gate:
            dd = e / peak - 1.0
            if dd < max_dd:
                max_dd = dd
                gate = _drawdown_gate_nb(peak, max_dd)
    return peak, gate, max_dd, under, longest


@njit
def _drawdown_span_nb(equity, lo, cnt, peak, gate, max_dd, under, longest):
    """Bars `lo .. lo + cnt` of `drawdown_stats_nb`: `(peak, gate, max_dd, under, longest)` in
    and out, the gate always `_drawdown_gate_nb(peak, max_dd)`.

    Most spans set no new peak, and one pass of counts (which vectorizes) shows it: every bar
    is then one more under, and where one is at or below the gate, as `x / peak - 1` never
    decreases with x (peak > 0), the lowest bar's drawdown is the span's least, exactly. A
    span all at a positive peak puts none under. Other spans take the steps bar by bar; both
    ways give the same results."""
    e_ = equity[lo : lo + cnt]  # indexed from 0: no wrap-around checks
    n_above, n_at_peak, n_below = 0, 0, 0
    for k in range(cnt):  # counts, not flags or a running minimum: this loop vectorizes
        e = e_[k]
        n_above += e >= peak
        n_at_peak += e == peak
        n_below += e <= gate
    if peak > 0.0:
        if n_above == 0:
            under += cnt
            if n_below > 0:
                dd = _span_lowest_nb(e_, cnt) / peak - 1.0
                if dd < max_dd:
                    max_dd = dd
                    gate = _drawdown_gate_nb(peak, max_dd)
            return peak, gate, max_dd, under, max(longest, under)
        if n_at_peak == cnt:
            return peak, gate, max_dd, 0, longest
    prev = equity[lo - 1] if lo > 0 else 0.0
    for k in range(cnt):
        e = e_[k]
        peak, gate, max_dd, under, longest = _drawdown_step_nb(
            e, lo + k == 0, prev, peak, gate, max_dd, under, longest
        )
        prev = e
    return peak, gate, max_dd, under, longest


@njit
def _span_lowest_nb(e_, cnt):
    """The least of `e_[:cnt]`, NaN never (four independent running minimums: no chain)."""
    l0, l1, l2, l3 = np.inf, np.inf, np.inf, np.inf
    stop4 = cnt - cnt % 4
    for k in range(0, stop4, 4):
        a, b, c, d = e_[k], e_[k + 1], e_[k + 2], e_[k + 3]
        l0 = a if a < l0 else l0
        l1 = b if b < l1 else l1
        l2 = c if c < l2 else l2
        l3 = d if d < l3 else l3
    for k in range(stop4, cnt):
        a = e_[k]
        l0 = a if a < l0 else l0
    l0 = l1 if l1 < l0 else l0
    l2 = l3 if l3 < l2 else l2
    return l2 if l2 < l0 else l0


@njit
def _block_sums_nb(returns, m, bounds, blocks, stack):
    """Each CSCV block's sum and sum of squares of the first `m` `returns` (return j in block g
    for `bounds[g] <= j < bounds[g + 1]`) into `blocks[g]`, as `np.sum` of the block and of its
    squares: NumPy's pairwise leaves (which vectorize) walked together. The returns must be
    finite (the caller has zeroed the others)."""
    for g in range(bounds.shape[0] - 1):
        lo = min(bounds[g], m)
        cnt = min(bounds[g + 1], m) - lo
        top = _walk_start_nb(stack, lo, cnt)
        while True:
            top, leaf_lo, leaf_n = _walk_leaf_nb(stack, top)
            s1 = _pairwise_block_nb(returns, leaf_lo, leaf_n)
            s2 = _pairwise_block_nb(returns, leaf_lo, leaf_n, True)
            top, s1, s2, _ = _walk_up_nb(stack, top, s1, s2, 0.0)
            if top < 0:
                break
        blocks[g, 0] = 0.0 + s1
        blocks[g, 1] = 0.0 + s2


@njit
def _return_moments_nb(equity, returns, keep, leaf, stack):
    """`return_moments_nb`, and where `keep` every return into `returns[:n - 1]` (`leaf` then
    holds >= min(n - 1, 128) more values apart from it; else `leaf` is `returns`)."""
    m = max(equity.shape[0] - 1, 0)
    if m == 0:
        return 0, np.nan, np.nan, np.nan
    top = _walk_start_nb(stack, 0, m)
    while True:
        top, lo, cnt = _walk_leaf_nb(stack, top)
        before, after = equity[lo : lo + cnt], equity[lo + 1 : lo + cnt + 1]
        r = returns[lo : lo + cnt] if keep else leaf[:cnt]
        for k in range(cnt):  # indices from 0 through slices: no wrap-around checks
            r[k] = after[k] / before[k] - 1.0
        s = _pairwise_block_nb(r, 0, cnt)
        for k in range(cnt):
            v = min(r[k], 0.0)
            leaf[k] = v * v
        q = _pairwise_block_nb(leaf, 0, cnt)
        top, s, q, _ = _walk_up_nb(stack, top, s, q, 0.0)
        if top < 0:
            break
    mean = (0.0 + s) / m
    downside = math.sqrt((0.0 + q) / m)
    std = np.nan
    if m > 1:
        top = _walk_start_nb(stack, 0, m)
        while True:
            top, lo, cnt = _walk_leaf_nb(stack, top)
            if keep:
                r = returns[lo : lo + cnt]
                for k in range(cnt):
                    d = r[k] - mean
                    leaf[k] = d * d
            else:
                before, after = equity[lo : lo + cnt], equity[lo + 1 : lo + cnt + 1]
                for k in range(cnt):
                    d = (after[k] / before[k] - 1.0) - mean
                    leaf[k] = d * d
            d = _pairwise_block_nb(leaf, 0, cnt)
            top, d, _, _ = _walk_up_nb(stack, top, d, 0.0, 0.0)
            if top < 0:
                break
        std = math.sqrt((0.0 + d) / (m - 1))
    return m, mean, std, downside


@njit
def return_moments_nb(equity, scratch, stack):
    """`(n_returns, mean, std_ddof1, downside_dev)` of the per-bar returns
    `r = equity[1:] / equity[:-1] - 1`, as NumPy computes them, bit for bit:
    `np.mean(r)`, `np.std(r, ddof=1)` (the mean, then the pairwise sum of squared deviations)
    and `sqrt(np.mean(np.minimum(r, 0) ** 2))`.

    Two walks over NumPy's pairwise leaves (`_walk_leaf_nb`, at most 128 values each): the
    first computes a leaf's returns into `scratch` (>= min(n - 1, 128) values: it stays in
    cache) and sums them, then their squared losses, the second the squared deviations from
    the mean; no per-bar array is written. `stack` is `pairwise_sum_nb`'s. No division sits
    on a loop-carried chain, so both walks run at memory speed. (`path_stats_nb` keeps the
    returns instead, for its block sums, and its second walk reads them.)
    """
    return _return_moments_nb(equity, scratch, False, scratch, stack)


def equity_stats_nb(equity: np.ndarray) -> tuple[int, float, float, float, float, int]:
    """Per-bar return moments and drawdown facts of `equity`.

    Returns `(n_returns, mean, std_ddof1, downside_dev, max_drawdown, max_dd_duration_bars)`
    where returns are `equity[i] / equity[i-1] - 1` for i >= 1 (`return_moments_nb`: equal to
    NumPy's mean and std, ddof 1), the downside deviation is `sqrt(mean(min(r, 0)^2))`, and
    `drawdown_stats_nb` gives `min(equity / cummax(equity) - 1)` and the longest run of bars
    below the running peak (a bar back at the peak has recovered: flat equity is never in
    drawdown). A plain-Python wrapper: it allocates the kernels' scratch.
    """
    scratch = np.empty(max(equity.shape[0] - 1, 0))
    count, mean, std, downside = return_moments_nb(equity, scratch, pairwise_stack())
    max_dd, longest = drawdown_stats_nb(equity)
    return int(count), float(mean), float(std), float(downside), float(max_dd), int(longest)


@njit
def leverage_stats_nb(units, close, equity, scratch, stack):
    """`(exposed_bars, leverage_sum, leverage_count)`: bars holding a position, and the
    pairwise (NumPy's) sum and count of the finite `|units * close| / equity` — what
    `np.abs(units * close) / equity` then `np.mean` of its finite values would use (a flat
    bar counts 0, unless its equity is 0 or NaN). `scratch` holds >= n values; `stack` is
    `pairwise_sum_nb`'s."""
    n = equity.shape[0]
    exposed = 0
    all_finite = True
    for i in range(n):  # no stores that depend on earlier bars: this loop vectorizes
        u = units[i]
        exposed += u != 0.0
        lev = abs(u * close[i]) / equity[i]
        scratch[i] = lev
        all_finite &= math.isfinite(lev)
    kept = n
    if not all_finite:  # rare (equity at 0 or NaN): keep the finite ones, in order
        kept = 0
        for i in range(n):
            if math.isfinite(scratch[i]):
                scratch[kept] = scratch[i]
                kept += 1
    return exposed, np_sum_nb(scratch, kept, stack), kept


@njit
def round_significant_nb(x, digits, out):
    """`x` rounded to `digits` significant digits (half to even), NaN and inf kept.

    Tables are written with these values so their bytes do not depend on the last bit of a
    float. Equals `float(f"{v:.{digits}g}")` except, rarely, for values within an ulp of a
    decimal half-way point. Magnitudes beyond ~1e±288 (never money or prices) are left as they are.
    """
    for i in range(x.shape[0]):
        v = x[i]
        if v == 0.0 or not math.isfinite(v):
            out[i] = v
            continue
        exponent = math.floor(math.log10(abs(v)))
        shift = digits - 1 - exponent
        if shift > 300 or shift < -300:
            out[i] = v
        elif shift >= 0:
            scale = 10.0**shift
            out[i] = np.round(v * scale) / scale
        else:
            scale = 10.0 ** (-shift)
            out[i] = np.round(v / scale) * scale
    return out


# ---------------------------------------------------------------- per-path statistics
#
# Every run's metrics (a single run, each sweep combination, each fold) come from one row of
# these statistics (`btlab.metrics.metrics_from_stats`); the sweep kernel fills one row per
# combination, `btlab.metrics.compute_metrics` one for a run.

STAT_NAMES: tuple[str, ...] = (
    "status",  # dtypes.Status of the execution kernel
    "n_returns",
    "mean",  # per-bar return mean (as equity_stats_nb: NumPy's mean)
    "std",  # ddof 1
    "downside",  # sqrt(mean(min(r, 0)^2))
    "max_drawdown",
    "max_dd_bars",
    "final_equity",
    "exposed_bars",  # bars ending with units != 0
    "leverage_sum",  # sum of finite |units * close| / equity
    "leverage_count",
    "equity_sum",
    "traded",  # sum of |units| * price over fills
    "fill_count",
    "spread",
    "slippage",
    "commission",
    "borrow",
    "closed_trades",
    "open_trade",  # 1 if the last trade is still open
    "wins",  # closed trades with net P&L > 0
    "win_sum",
    "losses",  # closed trades with net P&L < 0
    "loss_sum",
    "return_sum",  # sum of closed trades' returns
    "best_return",
    "worst_return",
    "bars_held_sum",
    "flags",
    "halt_bar",
)
N_STATS = len(STAT_NAMES)
(
    SW_STATUS, SW_N_RETURNS, SW_MEAN, SW_STD, SW_DOWNSIDE, SW_MAX_DD, SW_DD_BARS, SW_FINAL,
    SW_EXPOSED, SW_LEV_SUM, SW_LEV_COUNT, SW_EQUITY_SUM, SW_TRADED, SW_FILLS, SW_SPREAD,
    SW_SLIPPAGE, SW_COMMISSION, SW_BORROW, SW_CLOSED, SW_OPEN_TRADE, SW_WINS, SW_WIN_SUM,
    SW_LOSSES, SW_LOSS_SUM, SW_RET_SUM, SW_RET_BEST, SW_RET_WORST, SW_HELD_SUM, SW_FLAGS,
    SW_HALT_BAR,
) = range(N_STATS)  # fmt: skip
BLOCK_FIELDS = 2  # per CSCV block: sum of returns, sum of squared returns


@njit
def sharpe_nb(mean, deviation, scale):
    """`mean / deviation * scale` (the annualized Sharpe with the std, Sortino with the downside
    deviation), NaN unless `deviation > 0`: the kernels' one copy of
    `btlab.metrics.annualized_ratio`."""
    return mean / deviation * scale if deviation > 0 else np.nan


@njit
def _bars_block_nb(units, close, equity, borrow, has_borrow, lo, n, scratch):
    """NumPy's pairwise leaf of bars `lo .. lo + n` for three series, the equity, the borrow
    and the gross leverage `|units * close| / equity` (computed into `scratch`, which stays in
    cache): `(sum equity, sum borrow, sum leverage, bars holding a position, whether every
    leverage was finite)`."""
    exposed = 0
    finite = True
    u_, c_, e_ = units[lo : lo + n], close[lo : lo + n], equity[lo : lo + n]
    for k in range(n):  # no stores that depend on earlier bars: this loop vectorizes
        u = u_[k]
        exposed += u != 0.0
        lev = abs(u * c_[k]) / e_[k]
        scratch[k] = lev
        finite &= math.isfinite(lev)
    sl = _pairwise_block_nb(scratch, 0, n)
    sb = _pairwise_block_nb(borrow, lo, n) if has_borrow else 0.0
    return _pairwise_block_nb(equity, lo, n), sb, sl, exposed, finite


def path_scratch_size(n_bars: int) -> int:
    """The `scratch` values with which `path_stats_nb` keeps the returns over `n_bars` bars
    (the returns and a leaf; it needs only `n_bars`, and divides twice more with that)."""
    return n_bars + 128


@njit
def path_stats_nb(close, units, equity, borrow, has_borrow, bounds, row, blocks, scratch, stack):
    """The per-bar statistics of a simulated path into `row`: the return moments and drawdown
    facts of `equity_stats_nb`, the exposure, and the leverage, equity and borrow sums in
    NumPy's pairwise order (borrow is 0 without `has_borrow`). Per CSCV block g of returns
    (`bounds[g] <= j < bounds[g + 1]`, return j ending at bar j + 1) the sum and sum of squares
    of its returns (a non-finite one counts 0) go to `blocks[g]`, each as `np.sum` would.
    `scratch` holds >= n values; with `path_scratch_size(n)` (the sweep kernels' and the
    metrics' own) the returns are kept.

    Passes over what the kernel has just written: the returns, computed once into `scratch` in
    the first of the two pairwise walks of the return moments (where kept, the second reads
    them, else it divides again); the blocks' sums of those returns (`_block_sums_nb`); and
    one pairwise walk over the bars summing equity, borrow and leverage leaf by leaf
    (`_bars_block_nb`), the drawdown running over each leaf while it is in cache
    (`_drawdown_span_nb`). Where a leverage is not finite (equity at 0 or NaN: rare) its sum
    is taken again over the finite ones only (`leverage_stats_nb`).
    """
    n = close.shape[0]
    m = max(n - 1, 0)
    keep = scratch.shape[0] >= m + min(m, 128)  # room to keep the returns: computed once
    returns = scratch[:m] if keep else scratch
    leaf = scratch[m:] if keep else scratch
    count, mean, std, downside = _return_moments_nb(equity, returns, keep, leaf, stack)
    if bounds.shape[0] > 1:
        if not keep:  # the moments' leaves used the room: divide again
            before, after = equity[:m], equity[1 : m + 1]
            for j in range(m):
                returns[j] = after[j] / before[j] - 1.0
        if not math.isfinite(mean):  # a finite mean: every return is finite
            for j in range(m):
                if not math.isfinite(returns[j]):
                    returns[j] = 0.0
        _block_sums_nb(returns, m, bounds, blocks, stack)
    # the returns are done with: `scratch` holds each leaf's leverage from here
    exposed = 0
    finite = True
    peak, gate, max_dd, under, longest = -np.inf, np.inf, 0.0, 0, 0
    top = _walk_start_nb(stack, 0, n)
    while True:
        top, lo, cnt = _walk_leaf_nb(stack, top)
        se, sb, sl, ex, fin = _bars_block_nb(
            units, close, equity, borrow, has_borrow, lo, cnt, scratch
        )
        peak, gate, max_dd, under, longest = _drawdown_span_nb(
            equity, lo, cnt, peak, gate, max_dd, under, longest
        )
        exposed += ex
        finite &= fin
        top, se, sb, sl = _walk_up_nb(stack, top, se, sb, sl)
        if top < 0:
            break
    lev_sum, lev_count = 0.0 + sl, n
    if not finite:
        exposed, lev_sum, lev_count = leverage_stats_nb(units, close, equity, scratch, stack)
    row[SW_N_RETURNS] = count
    row[SW_MEAN] = mean
    row[SW_STD] = std
    row[SW_DOWNSIDE] = downside
    row[SW_MAX_DD] = max_dd
    row[SW_DD_BARS] = longest
    row[SW_EXPOSED] = exposed
    row[SW_LEV_SUM] = lev_sum
    row[SW_LEV_COUNT] = lev_count
    row[SW_EQUITY_SUM] = 0.0 + se
    row[SW_BORROW] = 0.0 + sb if has_borrow else 0.0


@njit
def fill_stats_nb(fills, k, row, scratch, stack):
    """Traded notional and cost totals of the first `k` fills into `row`, each summed as
    `np.sum` of its column would (`scratch` holds at least `k` values)."""
    for j in range(k):
        scratch[j] = abs(fills[j]["units"]) * fills[j]["price"]
    row[SW_TRADED] = np_sum_nb(scratch, k, stack)
    for j in range(k):
        scratch[j] = fills[j]["spread_cost"]
    row[SW_SPREAD] = np_sum_nb(scratch, k, stack)
    for j in range(k):
        scratch[j] = fills[j]["slippage_cost"]
    row[SW_SLIPPAGE] = np_sum_nb(scratch, k, stack)
    for j in range(k):
        scratch[j] = fills[j]["commission"]
    row[SW_COMMISSION] = np_sum_nb(scratch, k, stack)
    row[SW_FILLS] = k


@njit
def trade_stats_nb(trades, count, row, scratch, stack):
    """Closed-trade counts and sums of the first `count` trade records into `row`: the winning
    and losing net P&L and the returns each summed in trade order, as `np.sum` of them would
    (`scratch` holds at least `count` values)."""
    closed = 0
    wins = 0
    losses = 0
    held = 0
    best = -np.inf
    worst = np.inf
    for j in range(count):
        t = trades[j]
        if t["is_open"]:
            continue
        net = t["net_pnl"]
        if net > 0.0:
            scratch[wins] = net
            wins += 1
    row[SW_WIN_SUM] = np_sum_nb(scratch, wins, stack)
    for j in range(count):
        t = trades[j]
        if not t["is_open"] and t["net_pnl"] < 0.0:
            scratch[losses] = t["net_pnl"]
            losses += 1
    row[SW_LOSS_SUM] = np_sum_nb(scratch, losses, stack)
    for j in range(count):
        t = trades[j]
        if t["is_open"]:
            continue
        ret = t["return_"]
        scratch[closed] = ret
        closed += 1
        best = max(best, ret)
        worst = min(worst, ret)
        held += t["bars_held"]
    row[SW_RET_SUM] = np_sum_nb(scratch, closed, stack)
    row[SW_CLOSED] = closed
    row[SW_OPEN_TRADE] = 1.0 if count > 0 and trades[count - 1]["is_open"] else 0.0
    row[SW_WINS] = wins
    row[SW_LOSSES] = losses
    row[SW_RET_BEST] = best if closed > 0 else np.nan
    row[SW_RET_WORST] = worst if closed > 0 else np.nan
    row[SW_HELD_SUM] = held
