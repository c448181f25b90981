"""One place for the JIT policy of every btlab kernel.

`cache=True` so a warm process loads machine code from disk instead of compiling;
`nogil=True` so the service answers while a run computes; no `fastmath`, because
re-associating float sums changes results in the last bits and breaks determinism.
`parallel` is opt-in per kernel (only the sweep uses it, never the per-bar loop).

numba keys a cached function on its own file only (numba 0.68: a hash of that file). A kernel
that calls a kernel of another file is compiled with the callee inlined, so after an edit of the
callee alone (a `git pull`, a merge, an editable install) its cache would still run the old
callee: seen as a sweep kernel running the old order rule beside a new execution kernel. So the
package's sources are hashed together, and when that hash moves, the package's cache files are
removed before any kernel is decorated. (Stdlib only, hashlib and os, beside numba.)
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numba

_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
_STAMP_NAME = "btlab-kernels.sources.sha256"


def _sources() -> list[str]:
    return sorted(
        os.path.join(_KERNEL_DIR, name) for name in os.listdir(_KERNEL_DIR) if name.endswith(".py")
    )


def sources_digest() -> str:
    """sha256 over the kernel package's source files (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in _sources():
        digest.update(os.path.basename(path).encode())
        with open(path, "rb") as fh:
            digest.update(fh.read())
    return digest.hexdigest()


def _probe() -> None:
    """A function of this folder: numba finds its cache folder as for every kernel here."""


def cache_folder() -> str | None:
    """The folder numba caches this package's kernels in (in-tree `__pycache__`, or under
    `NUMBA_CACHE_DIR`); None where numba finds none it can write."""
    try:
        from numba.core.caching import FunctionCache

        return str(FunctionCache(_probe)._cache_path)
    except Exception:  # an internal API: without it the guard does nothing
        return None


def invalidate_stale_cache(folder: str | None = None) -> bool:
    """Remove the package's numba cache files (in `folder`, by default `cache_folder()`) when
    its sources differ from those the cache was built from; True where it did. Quietly nothing
    where the folder is read-only (an installed package is rewritten whole, and its files' own
    hashes then move together)."""
    folder = folder or cache_folder()
    if folder is None:
        return False
    digest = sources_digest()
    stamp = os.path.join(folder, _STAMP_NAME)
    try:
        with open(stamp, encoding="ascii") as fh:
            if fh.read().strip() == digest:
                return False
    except OSError:
        pass
    try:
        for name in os.listdir(folder):
            if name.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(folder, name))
        with open(stamp, "w", encoding="ascii") as fh:
            fh.write(digest + "\n")
    except OSError:
        return False
    return True


invalidate_stale_cache()

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
