"""One atomic operation for the parallel kernels: `fetch_add_nb`, so threads can take work from a
shared counter (a thread that finishes takes the next item, whatever the others' speed).

numba has no atomics on the CPU; this is LLVM's `atomicrmw add` (monotonic: the counter orders
nothing else; the parallel region's end publishes the results) through `numba.extending.
intrinsic`. Where the JIT is off (`NUMBA_DISABLE_JIT=1`: the kernels run as Python, `prange` is
`range`, one thread) it is a plain read-and-add.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np


def _fetch_add_py(counter: np.ndarray, index: int, value: int) -> int:
    old = int(counter[index])
    counter[index] = old + value
    return old


if numba.config.DISABLE_JIT:
    fetch_add_nb: Any = _fetch_add_py
else:  # pragma: no cover - compiled code: coverage runs without the JIT
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def fetch_add_nb(typingctx: Any, counter: Any, index: Any, value: Any) -> Any:
        """`counter[index] += value` atomically; returns the value before (a 1-D int64 array,
        `0 <= index < counter.shape[0]`: not checked)."""
        if not (
            isinstance(counter, types.Array) and counter.ndim == 1
            and counter.dtype == types.int64 and isinstance(index, types.Integer)
            and isinstance(value, types.Integer)
        ):  # fmt: skip
            return None
        sig = types.int64(counter, types.intp, types.int64)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            array, at, add = args
            ary = context.make_array(signature.args[0])(context, builder, array)
            ptr = cgutils.get_item_pointer(
                context, builder, signature.args[0], ary, [at], wraparound=False
            )
            return builder.atomic_rmw("add", ptr, add, "monotonic")

        return sig, codegen
