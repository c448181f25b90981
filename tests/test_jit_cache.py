"""The kernels' numba cache is keyed to the whole package's sources (kernels/_jit.py)."""

from __future__ import annotations

from pathlib import Path

import numba
import pytest

from btlab.kernels import _jit
from btlab.kernels.execution import simulate_nb


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="without the JIT nothing is cached")
def test_the_guard_looks_where_numba_caches_the_kernels() -> None:
    assert _jit.cache_folder() == str(simulate_nb._cache._cache_path)


def test_a_change_of_any_kernel_source_clears_the_cache_once(tmp_path: Path) -> None:
    cached = [tmp_path / "sweep.run_combo_nb-214.py311.nbi", tmp_path / "x.py311.1.nbc"]
    other = tmp_path / "notes.txt"
    for path in [*cached, other]:
        path.write_text("old")
    (tmp_path / _jit._STAMP_NAME).write_text("0" * 64 + "\n")  # built from other sources
    assert _jit.invalidate_stale_cache(str(tmp_path))
    assert not any(p.exists() for p in cached) and other.exists()
    assert (tmp_path / _jit._STAMP_NAME).read_text().strip() == _jit.sources_digest()
    cached[0].write_text("new")  # compiled from the current sources: kept
    assert not _jit.invalidate_stale_cache(str(tmp_path))
    assert cached[0].exists()


def test_the_digest_covers_every_kernel_file() -> None:
    names = [Path(p).name for p in _jit._sources()]
    assert {"execution.py", "sweep.py", "permutation.py", "_jit.py"} <= set(names)
