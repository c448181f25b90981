"""Plain-Python twins of kernels/cross_section.py: each row's weights from Python lists, the
ranking by `sorted` on (-score, symbol index)."""

from __future__ import annotations

import math

import numpy as np


def equal_weight(tradable: np.ndarray, gross: float) -> np.ndarray:
    out = np.zeros(tradable.shape, dtype=np.float64)
    for i, row in enumerate(tradable.tolist()):
        members = [k for k, t in enumerate(row) if t]
        for k in members:
            out[i, k] = gross / len(members)
    return out


def inverse_vol(vol: np.ndarray, tradable: np.ndarray, gross: float) -> np.ndarray:
    out = np.zeros(vol.shape, dtype=np.float64)
    for i in range(vol.shape[0]):
        known = [
            k
            for k in range(vol.shape[1])
            if tradable[i, k] and math.isfinite(vol[i, k]) and vol[i, k] > 0
        ]
        total = 0.0
        for k in known:  # symbol order, as the kernel sums
            total += 1.0 / float(vol[i, k])
        for k in known:
            out[i, k] = gross * ((1.0 / float(vol[i, k])) / total)
    return out


def rank_long_short(
    score: np.ndarray, tradable: np.ndarray, top: int, bottom: int, gross: float
) -> np.ndarray:
    out = np.zeros(score.shape, dtype=np.float64)
    long_w = gross / top if bottom == 0 else 0.5 * gross / top
    for i in range(score.shape[0]):
        ranked = [k for k in range(score.shape[1]) if tradable[i, k] and math.isfinite(score[i, k])]
        if len(ranked) < top + bottom:
            continue
        best_first = sorted(ranked, key=lambda k: (-float(score[i, k]), k))
        for k in best_first[:top]:
            out[i, k] = long_w
        for k in best_first[len(best_first) - bottom :]:
            out[i, k] = -0.5 * gross / bottom
    return out
