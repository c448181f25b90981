"""The joint permutation of a portfolio's price paths (SPEC §8 "Validation").

One shuffle of the clock's bar order (the single-symbol test's `shuffle_into_nb` of bars
1..n-1) is applied to every symbol at once: the clock bar a permuted path shows at slot i
carries the moves of every symbol at one real clock bar, so the cross-section keeps its
correlation. Each symbol's bars stay where they are on the clock (listing, delisting and gaps
fixed); a real clock bar's row of moves may only land on a slot whose pattern of moves is the
same (see `JointPermutationBase`).
"""

from __future__ import annotations

import numpy as np

from ..kernels.stats import shuffle_into_nb

#: What clock bar i is for one symbol: no move (no bar, or its first bar), a move from its bar
#: at i - 1, or a move across a gap (from an own bar before i - 1).
NO_MOVE = 0
MOVE = 1
GAP_MOVE = 2


class JointPermutationBase:
    """A portfolio's (n, K) price paths split once into rows of moves a permutation reorders.

    For symbol k at clock bar i (i >= 1) with an own bar there that is not its first, the move
    is the ratio of its close to its previous own close, with the bar's shape open/close,
    high/close and low/close (as `PermutationBase`). `code[i, k]` says which kind of bar it is
    (`NO_MOVE`, `MOVE`, `GAP_MOVE`). Clock bars whose code rows are equal form one stratum; a
    permutation keeps bar 0 and reorders bars 1..n-1 by one shuffle of all of them, restricted
    to each stratum (slot s of a stratum, in clock order, takes the s-th of its bars in the
    shuffled order). So every symbol keeps its own bars, its first bar (the anchor of its path,
    unchanged) and its NaN rows where they are; every row of moves travels whole; a single
    symbol without gaps (one stratum) gets exactly the single-symbol test's path.
    """

    def __init__(
        self, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> None:
        o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (open, high, low, close))
        if c.ndim != 2 or not o.shape == h.shape == lo.shape == c.shape:
            raise ValueError(
                "a portfolio's open, high, low and close must be (bars, symbols) arrays of one "
                f"shape, got {o.shape}, {h.shape}, {lo.shape}, {c.shape}"
            )
        n, k = c.shape
        if n < 2:
            raise ValueError(f"a price path needs at least 2 bars to permute, got {n}")
        present = np.isfinite(c)
        for a, name in ((o, "open"), (h, "high"), (lo, "low")):
            if not np.array_equal(np.isfinite(a), present):
                raise ValueError(f"{name} must be finite exactly where close is (a symbol's bars)")
        if any(np.any(a[present] <= 0) for a in (o, h, lo, c)):
            raise ValueError("open, high, low and close must be > 0 to take ratios")
        self.n, self.n_symbols = n, k
        self.present = present
        # each symbol's previous own bar at every clock bar (-1 where none yet)
        own = np.where(present, np.arange(n)[:, None], -1)
        last_own = np.maximum.accumulate(own, axis=0)
        prev = np.vstack([np.full((1, k), -1), last_own[:-1]])
        moves = present & (prev >= 0)
        code = np.where(moves, np.where(prev == np.arange(n)[:, None] - 1, MOVE, GAP_MOVE), NO_MOVE)
        self.code = code
        # row j of each: clock bar j + 1; NaN (ratio 1 for the close) where there is no move
        prev_close = np.take_along_axis(c, np.maximum(prev, 0), axis=0)
        with np.errstate(invalid="ignore"):
            self.ratio = np.where(moves, c / prev_close, 1.0)[1:]
            self.shape = np.stack([o / c, h / c, lo / c], axis=-1)[1:]
        self.anchor = np.where(present & ~moves, c, np.nan)  # each symbol's first close
        self.open, self.high, self.low, self.close = o, h, lo, c
        # the strata: clock bars 1..n-1 grouped by their code row, in clock order within each
        _, label = np.unique(code[1:], axis=0, return_inverse=True)
        self.label = label.reshape(-1).astype(np.int64)
        self.slots = np.argsort(self.label, kind="stable")
        #: bars 1..n-1 a permutation can move: those in a stratum of two or more
        self.movable = int(np.sum(np.bincount(self.label)[self.label] >= 2))

    def order(self, key: int | np.uint64) -> np.ndarray:
        """`order[j]`: the real clock bar (minus 1) whose moves slot j + 1 of the path of `key`
        shows: the key's shuffle of all bars 1..n-1, restricted to each stratum."""
        shuffled = np.empty(self.n - 1, np.int64)
        shuffle_into_nb(shuffled, np.uint64(key))
        order = np.empty(self.n - 1, np.int64)
        # the shuffled bars grouped by stratum (stably: in shuffled order) fill the strata's
        # slots grouped the same way (in clock order)
        order[self.slots] = shuffled[np.argsort(self.label[shuffled], kind="stable")]
        return order

    def buffers(self) -> None:
        """No reusable buffers: each path is new arrays (the portfolio pipeline allocates
        per path anyway)."""
        return None

    def permute_key(
        self, key: int | np.uint64, out: object = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The permuted (n, K) paths (open, high, low, close) of one 64-bit key as new
        read-only arrays, NaN where the real paths are (`out` is ignored: see `buffers`)."""
        order = self.order(key)
        # each symbol's close compounds from its anchor through the moves placed after it
        steps = np.vstack([np.where(self.present[:1], self.close[:1], 1.0), self.ratio[order]])
        steps = np.where(np.isnan(self.anchor), steps, self.anchor)
        c = np.multiply.accumulate(steps, axis=0)
        shape = self.shape[order]
        o, h, lo = self.open.copy(), self.high.copy(), self.low.copy()
        moved = self.code[1:] != NO_MOVE
        cm = c[1:][moved]
        om = cm * shape[..., 0][moved]
        o[1:][moved] = om
        h[1:][moved] = np.maximum(np.maximum(cm * shape[..., 1][moved], om), cm)
        lo[1:][moved] = np.minimum(np.minimum(cm * shape[..., 2][moved], om), cm)
        c = np.where(self.present, c, np.nan)
        for a in (o, h, lo, c):
            a.flags.writeable = False
        return o, h, lo, c
