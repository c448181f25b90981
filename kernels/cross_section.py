"""Cross-sectional kernels: one row of portfolio weights per clock bar from one row of inputs.

Inputs are (n, K): `tradable[i, k]` is True where symbol k is listed at clock bar i (its first
bar <= i <= its last bar); the scores and volatilities are SHIFTED features on the clock (known
before bar i opens). Row i of `out` depends on row i of the inputs only, so the kernels are
causal whenever their inputs are. A symbol that is not tradable gets 0, a NaN input is never
ranked or weighted, and a row with nothing to hold is all 0. Sums run in symbol order, so
results are bit-for-bit deterministic. No kernel allocates: `out` (and the ranking's `order`
scratch of K int64) come from the caller.
"""

from __future__ import annotations

import math

from ._jit import njit


@njit
def equal_weight_nb(tradable, gross, out):
    """`out[i, k] = gross / m_i` for the m_i symbols tradable at bar i, 0 for the others."""
    n, n_sym = out.shape
    for i in range(n):
        m = 0
        for k in range(n_sym):
            if tradable[i, k]:
                m += 1
        w = gross / m if m > 0 else 0.0
        for k in range(n_sym):
            out[i, k] = w if tradable[i, k] else 0.0


@njit
def inverse_vol_nb(vol, tradable, gross, out):
    """`out[i, k] = gross * (1 / vol[i, k]) / S_i`, `S_i = sum of 1 / vol[i, j]` over the
    symbols j tradable at bar i with a finite, positive vol; 0 for every other symbol (a zero
    vol would take an infinite weight: it is not weighted)."""
    n, n_sym = out.shape
    for i in range(n):
        total = 0.0
        for k in range(n_sym):
            v = vol[i, k]
            if tradable[i, k] and math.isfinite(v) and v > 0.0:
                total += 1.0 / v
        for k in range(n_sym):
            v = vol[i, k]
            if total > 0.0 and tradable[i, k] and math.isfinite(v) and v > 0.0:
                out[i, k] = gross * ((1.0 / v) / total)
            else:
                out[i, k] = 0.0


@njit
def _above_nb(score, i, a, b, best):
    """Whether symbol a sits above symbol b in the heap: with `best`, whether a ranks before b
    (a higher score, or an equal one and an earlier symbol: ties go to symbol order); else
    whether it ranks after b. A total order, so every selection below is unique."""
    x = score[i, a]
    y = score[i, b]
    if best:
        return x > y or (x == y and a < b)
    return x < y or (x == y and a > b)


@njit
def _sift_down_nb(score, i, order, start, end, best):
    root = start
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _above_nb(score, i, order[child + 1], order[child], best):
            child += 1
        if _above_nb(score, i, order[child], order[root], best):
            order[root], order[child] = order[child], order[root]
            root = child
        else:
            return


@njit
def _heapify_nb(score, i, order, end, best):
    for start in range(end // 2 - 1, -1, -1):
        _sift_down_nb(score, i, order, start, end, best)


@njit
def _pop_nb(score, i, order, end, best):
    """Move the heap's root to `order[end - 1]`; `order[:end - 1]` is a heap again."""
    order[0], order[end - 1] = order[end - 1], order[0]
    _sift_down_nb(score, i, order, 0, end - 1, best)


@njit
def rank_long_short_nb(score, tradable, top, bottom, gross, order, out):
    """Long the `top` best-scored symbols equally, short the `bottom` worst equally.

    At bar i the ranked symbols are those tradable with a finite score, ordered by score
    (highest first), ties by symbol order; the first `top` get `gross / top` when `bottom == 0`
    (long only), else `gross / 2 / top`, and the last `bottom` get `-gross / 2 / bottom`, so the
    gross exposure of a traded row is `gross`. Where fewer than `top + bottom` symbols are
    ranked, the row is flat (0): the two legs never overlap. `order` is K int64 of scratch.
    Selection, not a full sort: a heap of the m ranked symbols gives up its `top` best, then a
    heap of the rest its `bottom` worst, O(m + (top + bottom) log m) a bar.
    """
    n, n_sym = out.shape
    long_w = gross / top if bottom == 0 else 0.5 * gross / top
    short_w = -0.5 * gross / bottom if bottom > 0 else 0.0
    for i in range(n):
        m = 0
        for k in range(n_sym):
            out[i, k] = 0.0
            if tradable[i, k] and math.isfinite(score[i, k]):
                order[m] = k
                m += 1
        if m < top + bottom:
            continue
        end = m
        _heapify_nb(score, i, order, end, True)
        for _ in range(top):
            _pop_nb(score, i, order, end, True)
            end -= 1
            out[i, order[end]] = long_w
        if bottom > 0:
            _heapify_nb(score, i, order, end, False)
            for _ in range(bottom):
                _pop_nb(score, i, order, end, False)
                end -= 1
                out[i, order[end]] = short_w
