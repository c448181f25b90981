"""Sums in NumPy's pairwise order (`np.add.reduce` of float64, bit for bit): the leaf and the
explicit-stack walk every kernel that must equal a NumPy sum goes through (its twin is NumPy:
tests compare with `np.sum`)."""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit
def _pairwise_block_nb(a, lo, n, square=False):
    """NumPy's pairwise leaf (n <= 128) of `a[lo:lo + n]`, or with `square` of its squares (as
    `np.sum(a * a)`'s leaf): a plain loop below 8 values, else 8 accumulators.

    The leaf is indexed through the slice `a[lo:lo + n]` from 0: indices numba knows are not
    negative need no wrap-around check, so the accumulators vectorize (3x faster)."""
    b = a[lo : lo + n]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += b[i] * b[i] if square else b[i]
        return res
    if square:
        r0, r1, r2, r3 = b[0] * b[0], b[1] * b[1], b[2] * b[2], b[3] * b[3]
        r4, r5, r6, r7 = b[4] * b[4], b[5] * b[5], b[6] * b[6], b[7] * b[7]
    else:
        r0, r1, r2, r3 = b[0], b[1], b[2], b[3]
        r4, r5, r6, r7 = b[4], b[5], b[6], b[7]
    stop8 = n - n % 8
    for i in range(8, stop8, 8):
        if square:
            r0 += b[i] * b[i]
            r1 += b[i + 1] * b[i + 1]
            r2 += b[i + 2] * b[i + 2]
            r3 += b[i + 3] * b[i + 3]
            r4 += b[i + 4] * b[i + 4]
            r5 += b[i + 5] * b[i + 5]
            r6 += b[i + 6] * b[i + 6]
            r7 += b[i + 7] * b[i + 7]
        else:
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
        res += b[i] * b[i] if square else b[i]
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
