"""btlab.kernels: numba kernels over NumPy arrays (numpy, numba and math only).

Every jitted function ends in `_nb` and trusts its inputs; the plain-named wrappers
(`simulate`, ...) allocate outputs and check shapes. Import what you need directly::

    from btlab.kernels import simulate, ExecParams
"""

from .dtypes import FILL_DTYPE, REASON_NAMES, TRADE_DTYPE, FillAt, Flag, Reason, Sizing, Status
from .execution import (
    ExecParams,
    SimulationOutput,
    fill_cost_nb,
    new_state,
    simulate,
    simulate_nb,
    target_units_nb,
)

__all__ = [
    "FILL_DTYPE",
    "REASON_NAMES",
    "TRADE_DTYPE",
    "ExecParams",
    "FillAt",
    "Flag",
    "Reason",
    "SimulationOutput",
    "Sizing",
    "Status",
    "fill_cost_nb",
    "new_state",
    "simulate",
    "simulate_nb",
    "target_units_nb",
]
