"""One place for the JIT policy of every btlab kernel.

`cache=True` so a warm process loads machine code from disk instead of compiling;
`nogil=True` so the service answers while a run computes; no `fastmath`, because
re-associating float sums changes results in the last bits and breaks determinism.
`parallel` is opt-in per kernel (only the sweep uses it, never the per-bar loop).
"""

from __future__ import annotations

from typing import Any

import numba

JIT_OPTIONS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "fastmath": False,
    "error_model": "numpy",
}


def njit(*args: Any, **overrides: Any) -> Any:
    """`numba.njit` with the project's options; `overrides` may add e.g. `parallel=True`."""
    options = {**JIT_OPTIONS, **overrides}
    if args and callable(args[0]):
        return numba.njit(**options)(args[0])
    return numba.njit(*args, **options)
