"""The synthetic provider's one sequential loop: a GARCH(1,1) log-return path."""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit
def garch_returns_nb(z, mu, omega, alpha, beta):
    """Log returns `r[i] = mu + sigma[i] * z[i]` with `sigma[i]^2 = omega + alpha*e[i-1]^2 + beta*sigma[i-1]^2`.

    `z` are standardized innovations (unit variance); the recursion starts at the unconditional
    variance `omega / (1 - alpha - beta)`. Returns `(r, sigma)`.
    """
    n = z.shape[0]
    r = np.empty(n)
    sigma = np.empty(n)
    var = omega / (1.0 - alpha - beta)
    for i in range(n):
        s = np.sqrt(var)
        eps = s * z[i]
        sigma[i] = s
        r[i] = mu + eps
        var = omega + alpha * eps * eps + beta * var
    return r, sigma
