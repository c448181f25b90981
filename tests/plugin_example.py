"""A plugin as users write one (docs/extending.md): importing it registers a strategy.

Loaded by the CLI and service tests with `--plugin tests.plugin_example` / `BTLAB_PLUGINS`, in
their own processes, so the registry of the test process stays as shipped.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from btlab.features import Float, Params
from btlab.strategies import Strategy, strategy


class ConstantParams(Params):
    weight: Float = Field(0.5, ge=-1.0, le=1.0, description="The target on every bar.")


@strategy
class Constant(Strategy[ConstantParams]):
    name = "plugin_constant"
    description = "The same target on every bar (a test plugin)."
    Params = ConstantParams

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: ConstantParams, n: int) -> np.ndarray:
        return np.full(n, p.weight)
