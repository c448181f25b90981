"""Cell access that compiles to the array's own shape: `cell(a, i, k)` is `a[i, k]` of a
(bars, symbols) array and `a[i]` of one symbol's 1-D array.

The engine (`kernels/portfolio.py`) is written once over bars × symbols; a single-symbol run
passes its 1-D arrays as they are, so numba compiles that case with plain 1-D indexing and the
symbol loops folded to one pass (measured ~1.3-2x faster per bar than a (n, 1) view). The
choice is made by the array's type at compile time (`overload`), not at run time.
"""

from __future__ import annotations

from numba.extending import overload


def cell(a, i, k):
    """`a[i, k]`, or `a[i]` where `a` is 1-D (one symbol)."""
    return a[i] if a.ndim == 1 else a[i, k]


def set_cell(a, i, k, value):
    """`a[i, k] = value`, or `a[i] = value` where `a` is 1-D (one symbol)."""
    if a.ndim == 1:
        a[i] = value
    else:
        a[i, k] = value


@overload(cell, inline="always")
def _cell_typed(a, i, k):
    if a.ndim == 1:
        return lambda a, i, k: a[i]
    return lambda a, i, k: a[i, k]


@overload(set_cell, inline="always")
def _set_cell_typed(a, i, k, value):
    if a.ndim == 1:

        def set_1d(a, i, k, value):
            a[i] = value

        return set_1d

    def set_2d(a, i, k, value):
        a[i, k] = value

    return set_2d
