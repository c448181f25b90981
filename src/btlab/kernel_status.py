"""The one place that turns an execution-kernel status code into an error.

Kernels report outcomes with `btlab.kernels.Status` codes instead of raising (they run
without the GIL, in parallel); every core caller hands the codes it got here.
"""

from __future__ import annotations

import numpy as np

from .errors import RunError
from .kernels.dtypes import Status, status_message


def raise_for_status(status: int | np.ndarray, where: str, item: str = "") -> None:
    """Raise `RunError` unless every code in `status` (one code, or one per item of a batch) is
    `Status.OK`. The message says what the code means, `where` the kernel ran (e.g. "on a
    permuted path") and, for a batch, which `item` (e.g. "combination 3") failed first."""
    codes = np.atleast_1d(np.asarray(status))
    bad = np.flatnonzero(codes != Status.OK)
    if bad.size == 0:
        return
    code = int(codes[bad[0]])
    which = f" ({item} {int(bad[0])})" if item else ""
    raise RunError(
        f"execution kernel failed {where}{which}: {status_message(code)} (status {code})"
    )
