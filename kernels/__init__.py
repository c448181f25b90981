"""btlab.kernels: numba kernels over NumPy arrays (numpy, numba and math only).

Every jitted function ends in `_nb`, trusts its inputs and allocates nothing: every buffer comes
from its caller (parallel kernels take per-chunk scratch with a leading chunk axis). The
plain-Python wrappers (`simulate`, and the `*_nb` names that return a new array, such as
`sma_nb`, over the jitted `*_into_nb` kernels) allocate outputs and check shapes. Import what
you need directly::

    from btlab.kernels import simulate, ExecParams
"""

from .dtypes import FILL_DTYPE, REASON_NAMES, TRADE_DTYPE, FillAt, Flag, Reason, Sizing, Status
from .execution import (
    BarInputs,
    ExecParams,
    OrderInputs,
    SimBuffers,
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
    "BarInputs",
    "ExecParams",
    "FillAt",
    "Flag",
    "OrderInputs",
    "Reason",
    "SimBuffers",
    "SimulationOutput",
    "Sizing",
    "Status",
    "fill_cost_nb",
    "new_state",
    "simulate",
    "simulate_nb",
    "target_units_nb",
]
