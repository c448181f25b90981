"""Canonical JSON, content hashes and per-module seeds (SPEC §4)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

SIGNIFICANT_DIGITS = 12

#: The deepest nesting `canonicalize` writes: deeper input is an error, never a RecursionError.
MAX_DEPTH = 100


def round_float(x: float) -> float | None:
    """A float rounded to 12 significant digits; NaN and inf become None (JSON null)."""
    if not math.isfinite(x):
        return None
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}") if x != 0.0 else 0.0


def canonicalize(obj: Any, _depth: int = 0) -> Any:
    """The JSON-ready twin of `obj`: floats rounded, NaN/inf as None, numpy scalars unwrapped.

    ValueError for containers nested deeper than `MAX_DEPTH`.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, bool | int):
        return obj
    if isinstance(obj, float):
        return round_float(obj)
    if isinstance(obj, dict | list | tuple | np.ndarray) and _depth >= MAX_DEPTH:
        raise ValueError(f"cannot write JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(obj, dict):
        return {str(k): canonicalize(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [canonicalize(v, _depth + 1) for v in obj]
    if isinstance(obj, np.ndarray):
        return [canonicalize(v, _depth + 1) for v in obj.tolist()]
    raise TypeError(f"cannot write {type(obj).__name__} as canonical JSON")


def canonical_json(obj: Any) -> str:
    """Keys sorted, no spaces, UTF-8 text, floats to 12 significant digits, NaN/inf as null."""
    return json.dumps(
        canonicalize(obj),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def canonical_bytes(obj: Any) -> bytes:
    return canonical_json(obj).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seed_for(root_seed: int, module: str) -> int:
    """`seed(module)`: the first 8 bytes, little-endian, of sha256(f"{root_seed}:{module}")."""
    digest = hashlib.sha256(f"{root_seed}:{module}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def rng_for(root_seed: int, module: str) -> np.random.Generator:
    """The generator every random draw of `module` comes from."""
    return np.random.default_rng(seed_for(root_seed, module))
