"""A fill buffer too small for a run: `simulate_nb` stops with `Status.FILLS_FULL` at the fill
that does not fit, whichever step makes it (an order, a stop or take-profit, a max-drawdown or
ruin close, the end-of-data exit), having written exactly the first fills of the full run."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btlab.kernels import FILL_DTYPE, ExecParams, Status, simulate
from btlab.kernels.execution import (
    ST_N_FILLS,
    BarInputs,
    OrderInputs,
    SimBuffers,
    new_state,
    simulate_nb,
)
from tests.strategies import Bars, bars, exec_params, scales, targets


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), b=bars(), p=exec_params())
def test_a_short_fill_buffer_stops_at_the_fill_that_does_not_fit(
    data: st.DataObject, b: Bars, p: ExecParams
) -> None:
    n = len(b)
    target = data.draw(targets(n))
    scale = data.draw(scales(n, p.sizing))
    full = simulate(*b.arrays(), target, p, scale=scale).fills
    capacity = data.draw(st.integers(0, max(len(full) - 1, 0)))
    state = new_state(p.initial_cash)
    fills = np.empty(capacity, dtype=FILL_DTYPE)
    outputs = [np.empty(n) for _ in range(4)]
    out = SimBuffers(*outputs, fills)
    status = simulate_nb(BarInputs(*b.arrays()), OrderInputs(target, scale), p, state, out, 0, n)
    if len(full) == 0:  # nothing to fill: an empty buffer is enough
        assert status == Status.OK
        return
    assert status == Status.FILLS_FULL
    assert int(state[ST_N_FILLS]) == capacity
    assert fills.tobytes() == full[:capacity].tobytes()
