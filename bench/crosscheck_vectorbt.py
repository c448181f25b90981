"""Cross-check btlab against vectorbt configured the same way (run by hand; not a CI test).

    .venv/bin/python bench/crosscheck_vectorbt.py --vectorbt-python /path/to/vbt-venv/bin/python

Dual-SMA crossover, long-only, the whole equity in on each entry, decided on bar i-1's close and
filled at bar i's open, no stops. With zero costs the two engines must agree to float rounding
(same fills, same equity path). With a proportional fee they differ by construction, and the
script shows by how much: btlab sizes the order to `target * equity / price` and pays the fee
on top (cash can dip a fee below zero, SPEC §3), vectorbt shrinks the order so cash stays >= 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import textwrap

import numpy as np

import btlab
from btlab.config import SyntheticData
from btlab.synthetic_data import generate as synthetic

VBT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd, vectorbt as vbt
    bars = np.load(sys.argv[1])
    fee, fast, slow = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    close, open_ = pd.Series(bars["close"]), pd.Series(bars["open"])
    f = close.rolling(fast).mean().shift(1)  # what btlab's registry hands the strategy at row i
    s = close.rolling(slow).mean().shift(1)
    long = (f > s).fillna(False)
    entries = long & ~long.shift(1, fill_value=False)
    exits = ~long & long.shift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=fee, size=np.inf,
                                    init_cash=100_000.0, freq="1D")
    value = pf.value().to_numpy()
    print(json.dumps({"final": float(value[-1]), "trades": int(pf.trades.count()),
                      "equity": value.tolist(), "version": vbt.__version__}))
    """
)


def compare(vbt_python: str, n: int, fee_bps: float, fast: int, slow: int) -> None:
    ds = synthetic(SyntheticData(bars=n, seed=11))
    request = {
        "strategy": {"name": "sma_cross", "params": {"fast": fast, "slow": slow}},
        "execution": {"commission_bps": fee_bps, "close_at_end": False},
        "validation": {"enabled": False},
    }
    ours = btlab.run(request, data=ds)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bars.npz")
        np.savez(path, open=ds.open, close=ds.close)
        out = subprocess.run(
            [vbt_python, "-c", VBT_SCRIPT, path, str(fee_bps / 1e4), str(fast), str(slow)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    theirs = json.loads(out)
    eq_ours = ours.equity_values
    eq_theirs = np.asarray(theirs["equity"])
    worst = float(np.max(np.abs(eq_ours / eq_theirs - 1)))
    final_rel = ours.metrics["final_equity"] / theirs["final"] - 1
    print(
        f"{n:,} bars, SMA {fast}/{slow}, fee {fee_bps} bp: btlab {ours.metrics['final_equity']:,.4f} "
        f"({ours.metrics['trade_count']} trades + {ours.metrics['open_trade']} open) vs "
        f"vectorbt {theirs['version']} {theirs['final']:,.4f} ({theirs['trades']} trades incl. open); "
        f"final rel diff {final_rel:.2e}, worst per-bar rel diff {worst:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectorbt-python", required=True, metavar="PYTHON")
    parser.add_argument("--bars", type=int, default=5000)
    args = parser.parse_args()
    for fee in (0.0, 1.0, 10.0):
        compare(args.vectorbt_python, args.bars, fee, 10, 50)
    compare(args.vectorbt_python, args.bars, 0.0, 20, 100)


if __name__ == "__main__":
    main()
