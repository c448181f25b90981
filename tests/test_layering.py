"""Layering rules checked on the source text: JIT options live in kernels/_jit.py only, and no
jitted kernel allocates (every buffer comes from its caller)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JIT_MODULE = ROOT / "kernels" / "_jit.py"
NUMBA_JIT_NAMES = {"jit", "njit", "generated_jit", "vectorize", "guvectorize", "cfunc", "stencil"}
#: NumPy calls that make a new array (a jitted kernel must take its buffers from the caller).
ALLOCATING = {
    "array", "asarray", "ascontiguousarray", "empty", "empty_like", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "arange", "linspace", "copy", "concatenate", "stack",
    "hstack", "vstack", "where", "cumsum", "sort", "argsort", "unique", "diff",
}  # fmt: skip


def _sources() -> list[Path]:
    return sorted([*(ROOT / "kernels").rglob("*.py"), *(ROOT / "src").rglob("*.py")])


def literal_jit_uses(path: Path) -> list[str]:
    """`file:line what` for every numba JIT decorator or import of one in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    numba_aliases = {"numba"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            numba_aliases |= {a.asname or a.name for a in node.names if a.name == "numba"}
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numba":
            for alias in node.names:
                if alias.name in NUMBA_JIT_NAMES:
                    found.append(f"{path}:{node.lineno} from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in NUMBA_JIT_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in numba_aliases
        ):
            found.append(f"{path}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def _is_njit(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Name) and target.id == "njit"


def allocations_in_kernels(path: Path) -> list[str]:
    """`file:line function: np.call` for every array made inside an `@njit` function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or not any(map(_is_njit, fn.decorator_list)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            func = node.func
            on_numpy = isinstance(func.value, ast.Name) and func.value.id in {"np", "numpy"}
            if (on_numpy and func.attr in ALLOCATING) or (func.attr == "copy" and not node.args):
                owner = func.value.id if isinstance(func.value, ast.Name) else "..."
                found.append(f"{path}:{node.lineno} {fn.name}: {owner}.{func.attr}()")
    return found


def test_no_jit_decorator_outside_the_jit_module() -> None:
    offenders = [hit for p in _sources() if p != JIT_MODULE for hit in literal_jit_uses(p)]
    assert not offenders, "numba JIT used outside kernels/_jit.py:\n" + "\n".join(offenders)


def test_no_jitted_kernel_allocates() -> None:
    offenders = [
        hit for p in sorted((ROOT / "kernels").rglob("*.py")) for hit in allocations_in_kernels(p)
    ]
    assert not offenders, "jitted kernels that allocate:\n" + "\n".join(offenders)


def test_the_scans_see_what_they_forbid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import numba\nimport numba as nb\nfrom numba import njit, prange\n"
        "from numba.core.decorators import jit\n"
        "from ._jit import njit as _n\n\n"
        "@numba.njit(cache=True)\ndef f(x):\n    return x\n\n"
        "@nb.jit\ndef g(x):\n    return x\n\n"
        "@njit\ndef h(x):\n    out = np.empty(3)\n    return x.copy()\n\n"
        "def wrapper(x):\n    return h(np.empty(3))\n"
    )
    jit_hits = sorted(hit.split(" ", 1)[1] for hit in literal_jit_uses(bad))
    assert jit_hits == [
        "from numba import njit",
        "from numba.core.decorators import jit",
        "nb.jit",
        "numba.njit",
    ]
    assert all(hit.startswith(f"{bad}:") for hit in literal_jit_uses(bad))
    alloc_hits = sorted(hit.split(" ", 1)[1] for hit in allocations_in_kernels(bad))
    assert alloc_hits == ["h: np.empty()", "h: x.copy()"]
