"""Per-path statistics (SPEC §5), the heavy part of every run's metrics, and NumPy-order sums."""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit


@njit
def _pairwise_block_nb(a, lo, n):
    """NumPy's pairwise leaf (n <= 128): a plain loop below 8 values, else 8 accumulators.

    The leaf is indexed through the slice `a[lo:lo + n]` from 0: indices numba knows are not
    negative need no wrap-around check, so the accumulators vectorize (3x faster)."""
    b = a[lo : lo + n]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += b[i]
        return res
    r0, r1, r2, r3 = b[0], b[1], b[2], b[3]
    r4, r5, r6, r7 = b[4], b[5], b[6], b[7]
    stop8 = n - n % 8
    for i in range(8, stop8, 8):
        r0 += b[i]
        r1 += b[i + 1]
        r2 += b[i + 2]
        r3 += b[i + 3]
        r4 += b[i + 4]
        r5 += b[i + 5]
        r6 += b[i + 6]
        r7 += b[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(stop8, n):
        res += b[i]
    return res


@njit
def _left_half_nb(n):
    """Where NumPy splits n > 128 values: half of n, rounded down to a multiple of 8."""
    half = n // 2
    return half - half % 8


#: Frames of the explicit stack of NumPy's pairwise walk (`pairwise_sum_nb` and the fused
#: walks of `path_stats_nb`): one per level of NumPy's halving (a 64-bit length halves at most
#: 64 times); fields: segment start, segment length, whether its left half's sums are known,
#: and those sums (up to three walked together; all float64: segment bounds are exact below
#: 2**53).
PAIRWISE_STACK_SHAPE = (64, 6)
_F_LO, _F_N, _F_HAS_LEFT, _F_LEFT = 0, 1, 2, 3


def pairwise_stack() -> np.ndarray:
    """A fresh stack for `pairwise_sum_nb` and every kernel that sums in NumPy's order."""
    return np.empty(PAIRWISE_STACK_SHAPE)


@njit
def _walk_start_nb(stack, lo, n):
    """Frame 0 of a pairwise walk over `lo .. lo + n`; returns the top frame (0)."""
    stack[0, _F_LO] = lo
    stack[0, _F_N] = n
    stack[0, _F_HAS_LEFT] = 0.0
    return 0


@njit
def _walk_leaf_nb(stack, top):
    """Descend from frame `top` to the leftmost leaf (<= 128 values) of its segment: returns
    `(top, leaf_start, leaf_length)`, frames pushed for each left half on the way."""
    m = int(stack[top, _F_N])
    while m > 128:
        half = _left_half_nb(m)
        stack[top + 1, _F_LO] = stack[top, _F_LO]
        stack[top + 1, _F_N] = half
        stack[top + 1, _F_HAS_LEFT] = 0.0
        top += 1
        m = half
    return top, int(stack[top, _F_LO]), m


@njit
def _walk_up_nb(stack, top, v0, v1, v2):
    """The leaf of frame `top` summed to `(v0, v1, v2)`: add it to every finished left half
    above it (left + right, as NumPy). Returns `(top, v0, v1, v2)`: `top < 0` when the walk is
    done (the values are then the sums), else the frame of the right half to descend next."""
    top -= 1
    while top >= 0 and stack[top, _F_HAS_LEFT] != 0.0:
        v0 = stack[top, _F_LEFT] + v0
        v1 = stack[top, _F_LEFT + 1] + v1
        v2 = stack[top, _F_LEFT + 2] + v2
        top -= 1
    if top < 0:
        return top, v0, v1, v2
    stack[top, _F_LEFT] = v0  # a left half done: its sibling (the right half) is next
    stack[top, _F_LEFT + 1] = v1
    stack[top, _F_LEFT + 2] = v2
    stack[top, _F_HAS_LEFT] = 1.0
    seg_n = int(stack[top, _F_N])
    half = _left_half_nb(seg_n)
    stack[top + 1, _F_LO] = stack[top, _F_LO] + half
    stack[top + 1, _F_N] = seg_n - half
    stack[top + 1, _F_HAS_LEFT] = 0.0
    return top + 1, v0, v1, v2


@njit
def pairwise_sum_nb(a, lo, n, stack):
    """Sum of `a[lo:lo + n]` in NumPy's order: equal, bit for bit, to `np.add.reduce` of float64.

    NumPy sums pairwise (numpy/_core/src/umath/loops_utils.h.src): fewer than 8 values in a
    loop; up to 128 with 8 interleaved accumulators combined as ((r0+r1)+(r2+r3))+((r4+r5)+
    (r6+r7)), then the rest in a loop; longer runs are split at `_left_half_nb` and the halves'
    sums added. The recursion is walked with an explicit stack (numba cannot load a cached
    recursive function), the caller's `stack` (`PAIRWISE_STACK_SHAPE`): `_walk_leaf_nb` finds
    the leaves in order, `_walk_up_nb` adds each to the halves before it. The fused walks of
    `path_stats_nb` go through the same leaves summing up to three series at once.
    """
    if n <= 128:
        return _pairwise_block_nb(a, lo, n)
    top = _walk_start_nb(stack, lo, n)
    while True:
        top, leaf_lo, leaf_n = _walk_leaf_nb(stack, top)
        value = _pairwise_block_nb(a, leaf_lo, leaf_n)
        top, value, _, _ = _walk_up_nb(stack, top, value, 0.0, 0.0)
        if top < 0:
            return value


@njit
def np_sum_nb(a, n, stack):
    """`np.sum(a[:n])` of a float64 array, bit for bit: the identity 0.0 plus the pairwise sum
    (`stack` as `pairwise_sum_nb`'s)."""
    return 0.0 + pairwise_sum_nb(a, 0, n, stack)


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
    """
    peak, gate, max_dd, under, longest = -np.inf, np.inf, 0.0, 0, 0
    prev = 0.0
    for i in range(equity.shape[0]):
        e = equity[i]
        peak, gate, max_dd, under, longest = _drawdown_step_nb(
            e, i == 0, prev, peak, gate, max_dd, under, longest
        )
        prev = e
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
def _drawdown_and_blocks_nb(equity, returns, kept, bounds, blocks):
    """`drawdown_stats_nb` of `equity` and, in the same loop (two independent chains, which
    the processor overlaps), each CSCV block's sum and sum of squares of its finite returns
    (return j for `bounds[g] <= j < bounds[g + 1]`, in order) into `blocks[g]`; return j is
    `returns[j]` where `kept`, else computed here (the same division)."""
    n = equity.shape[0]
    peak, gate, max_dd, under, longest = -np.inf, np.inf, 0.0, 0, 0
    prev = 0.0
    n_blocks = bounds.shape[0] - 1
    # segments of bars: before the first block, each block, after the last
    for g in range(-1, n_blocks + 1):
        lo = 0 if g < 0 else min(bounds[g], n)
        hi = n if g >= n_blocks else min(bounds[g + 1], n)
        in_block = 0 <= g < n_blocks
        s1, s2 = 0.0, 0.0
        for i in range(lo, hi):
            e = equity[i]
            peak, gate, max_dd, under, longest = _drawdown_step_nb(
                e, i == 0, prev, peak, gate, max_dd, under, longest
            )
            prev = e
            if in_block:
                r = returns[i] if kept else equity[i + 1] / equity[i] - 1.0
                if math.isfinite(r):
                    s1 += r
                    s2 += r * r
        if in_block:
            blocks[g, 0] = s1
            blocks[g, 1] = s2
    return max_dd, longest


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
    of its finite returns go to `blocks[g]`. `scratch` holds >= n values; with
    `path_scratch_size(n)` (the sweep kernels' and the metrics' own) the returns are kept.

    Three passes over what the kernel has just written: the returns, computed once into
    `scratch` in the first of the two pairwise walks of the return moments (where kept, the
    second reads them, else it divides again); one loop over the bars running the drawdown
    and the blocks' sums of those returns side by side; and one pairwise walk over the bars summing equity, borrow and leverage leaf
    by leaf (`_bars_block_nb`). Where a leverage is not finite (equity at 0 or NaN: rare) its
    sum is taken again over the finite ones only (`leverage_stats_nb`).
    """
    n = close.shape[0]
    m = max(n - 1, 0)
    keep = scratch.shape[0] >= m + min(m, 128)  # room to keep the returns: computed once
    returns = scratch[:m] if keep else scratch
    leaf = scratch[m:] if keep else scratch
    count, mean, std, downside = _return_moments_nb(equity, returns, keep, leaf, stack)
    max_dd, longest = _drawdown_and_blocks_nb(equity, returns, keep, bounds, blocks)
    exposed = 0
    finite = True
    top = _walk_start_nb(stack, 0, n)
    while True:
        top, lo, cnt = _walk_leaf_nb(stack, top)
        se, sb, sl, ex, fin = _bars_block_nb(
            units, close, equity, borrow, has_borrow, lo, cnt, scratch
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
