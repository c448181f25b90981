"""The synthetic provider's one sequential loop: a GARCH(1,1) log-return path."""

from __future__ import annotations

import numpy as np

from ._jit import njit


def garch_returns_nb(
    z: np.ndarray, mu: float, omega: float, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Log returns `r[i] = mu + sigma[i] * z[i]` with `sigma[i]^2 = omega + alpha*e[i-1]^2 + beta*sigma[i-1]^2`.

    `z` are standardized innovations (unit variance); the recursion starts at the unconditional
    variance `omega / (1 - alpha - beta)`. Returns `(r, sigma)`.
    """
    r, sigma = np.empty(z.shape[0]), np.empty(z.shape[0])
    garch_returns_into_nb(z, mu, omega, alpha, beta, r, sigma)
    return r, sigma


@njit
def garch_returns_into_nb(z, mu, omega, alpha, beta, r, sigma):
    """`garch_returns_nb` written into `r` and `sigma` (the length of `z`)."""
    n = z.shape[0]
    var = omega / (1.0 - alpha - beta)
    for i in range(n):
        s = np.sqrt(var)
        eps = s * z[i]
        sigma[i] = s
        r[i] = mu + eps
        var = omega + alpha * eps * eps + beta * var
