"""Plain-Python twin of kernels/synthetic.py."""

from __future__ import annotations

import math

import numpy as np


def garch_returns(
    z: np.ndarray, mu: float, omega: float, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    r, sigma = [], []
    var = omega / (1.0 - alpha - beta)
    for zi in z:
        s = math.sqrt(var)
        eps = s * float(zi)
        sigma.append(s)
        r.append(mu + eps)
        var = omega + alpha * eps * eps + beta * var
    return np.array(r, dtype=np.float64), np.array(sigma, dtype=np.float64)
