"""Portfolio benchmark (run by hand): 500 symbols x 2,520 daily bars, monthly rebalance.

    .venv/bin/python bench/bench_portfolio.py --vectorbt-python /work/bench-venvs/vbt/bin/python

The work: one account trading 500 synthetic symbols (`btlab.portfolio.generate_portfolio`, no
missing bars, no zero-volume bars), re-sized to a fixed weight row (equal weight 1/K, and a
fixed random row summing to 1) at the first bar of each month (`timeframes.rebalance_schedule`),
filled at that bar's open, costs on (1 bp commission, 2 bp spread).

btlab, warm, best of N: `simulation.run_engine` on the aligned arrays with the precomputed (n, K)
target, then the marks, the trade ledger and `metrics.compute_metrics` exactly as
`portfolio_run.run_portfolio` does ("kernel + metrics"); and the whole `btlab.run` of the same
request (`data: {"symbols": 500, "bars": 2520}`, strategy `equal_weight`) for reference.

vectorbt, in its own virtualenv, the same work: `Portfolio.from_orders` with
`size_type="targetpercent"`, `group_by=True`, `cash_sharing=True`, `call_seq="auto"`, orders only
on the rebalance bars, `price=open` (valued at that price: vectorbt's default `val_price`),
`fees` = the commission, `slippage` = half the spread (btlab's fill price is the open times
1 +/- spread/2), then the account value, returns, Sharpe, max drawdown and the trade records.
The two equity curves are compared at zero cost before a ratio is printed, and with costs
(where they differ by construction: vectorbt shrinks a buy so its fee fits the cash, btlab pays
the fee from cash).

Rounds alternate btlab and vectorbt (`--rounds`), so both see the same load; the ratio is
best vs best over the rounds. `--memory` adds the tracemalloc peaks of each stage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

SYMBOLS, BARS = 500, 2520
COMMISSION_BPS, SPREAD_BPS = 1.0, 2.0
INITIAL_CASH = 1_000_000.0


def best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def dataset() -> Any:
    from btlab.config import SyntheticData
    from btlab.portfolio import generate_portfolio

    return generate_portfolio(SyntheticData(symbols=SYMBOLS, bars=BARS))


def weight_rows(k: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(13)
    random = rng.uniform(0.2, 1.0, k)
    return {"equal": np.full(k, 1.0 / k), "random": random / random.sum()}


def request(costs: bool) -> dict[str, Any]:
    execution: dict[str, Any] = {
        "rebalance": "monthly", "initial_cash": INITIAL_CASH, "close_at_end": False,
    }  # fmt: skip
    if costs:
        execution |= {"commission_bps": COMMISSION_BPS, "spread_bps": SPREAD_BPS}
    return {
        "data": {"symbols": SYMBOLS, "bars": BARS},
        "strategy": {"name": "equal_weight"},
        "execution": execution,
        "validation": {"enabled": False},
    }


class Btlab:
    """The kernel + metrics of `run_portfolio`, on the precomputed target of one weight row."""

    def __init__(self, ds: Any, weights: np.ndarray, costs: bool) -> None:
        from btlab.config import RunConfig
        from btlab.kernel_inputs import exec_params
        from btlab.kernels.portfolio import PortfolioBars
        from btlab.timeframes import rebalance_schedule

        self.ds = ds
        self.cfg = RunConfig.model_validate(
            {k: v for k, v in request(costs).items() if k != "data"}
        )
        self.params = exec_params(self.cfg)
        n, k = ds.close.shape
        self.target = np.ascontiguousarray(np.broadcast_to(weights, (n, k)))
        self.scale = np.ones((n, k))  # as `portfolio_run._size_scale` gives fraction sizing
        self.schedule = rebalance_schedule(ds.ts, "monthly")
        self.bars = PortfolioBars(ds.ts, ds.open, ds.high, ds.low, ds.close, ds.volume)
        self.ppy = float(ds.meta.periods_per_year)

    def engine(self) -> Any:
        from btlab.simulation import run_engine

        return run_engine(self.bars, self.target, self.scale, self.params, schedule=self.schedule)

    def metrics(self, sim: Any) -> dict[str, Any]:
        from btlab.metrics import compute_metrics
        from btlab.portfolio_run import PortfolioResult, _marks, _trades

        marks = _marks(self.ds.close)
        trades = _trades(sim, marks)
        result = PortfolioResult(
            config=self.cfg, config_hash="", dataset=self.ds, target=self.target, units=sim.units,
            cash=sim.cash, equity_values=sim.equity, borrow=sim.borrow, marks=marks,
            fill_records=sim.fills, trade_records=trades, metrics={}, validation=None,
            flags=sim.flags, halt_bar=sim.halt_bar,
        )  # fmt: skip
        price, exposure = result.exposure_arrays()
        return compute_metrics(
            self.ds.ts, price, sim.equity, exposure, sim.borrow.sum(axis=1), sim.fills, trades,
            initial_cash=INITIAL_CASH, periods_per_year=self.ppy,
            ruined=result.ruined, halted=result.halted,
        )  # fmt: skip

    def all(self) -> dict[str, Any]:
        return self.metrics(self.engine())


# The same work in vectorbt (its own virtualenv). argv: npz, repeat, mode ("time" or "equity").
VBT_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import numpy as np, vectorbt as vbt
    d = np.load(sys.argv[1])
    repeat, mode = int(sys.argv[2]), sys.argv[3]
    close, open_, schedule = d["close"], d["open"], d["schedule"]
    out = {"version": vbt.__version__}
    for name in ("equal", "random"):
        size = np.full(close.shape, np.nan)
        size[schedule] = d[name]
        def run(fees, slippage):
            pf = vbt.Portfolio.from_orders(
                close, size, size_type="targetpercent", price=open_, fees=fees, slippage=slippage,
                group_by=True, cash_sharing=True, call_seq="auto", init_cash=float(d["cash"]),
                freq="1D")
            value = pf.value()
            stats = (pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown(), pf.trades.count())
            return np.asarray(value, dtype=float).ravel(), stats
        if mode == "equity":
            out[name + "_zero"] = run(0.0, 0.0)[0].tolist()
            out[name + "_costs"] = run(float(d["fees"]), float(d["slippage"]))[0].tolist()
            continue
        fees, slip = float(d["fees"]), float(d["slippage"])
        run(fees, slip)
        times = []
        for _ in range(repeat):
            t = time.perf_counter(); run(fees, slip); times.append(time.perf_counter() - t)
        out[name] = min(times)
    print(json.dumps(out))
    """
)


def vectorbt(python: str, npz: str, repeat: int, mode: str) -> dict[str, Any]:
    text = subprocess.run(
        [python, "-c", VBT_SCRIPT, npz, str(repeat), mode], check=True, capture_output=True, text=True
    ).stdout  # fmt: skip
    out: dict[str, Any] = json.loads(text)
    return out


def agreement(ds: Any, rows: dict[str, np.ndarray], python: str, npz: str) -> None:
    theirs = vectorbt(python, npz, 1, "equity")
    for name, weights in rows.items():
        for costs in (False, True):
            ours = Btlab(ds, weights, costs).engine().equity
            other = np.asarray(theirs[f"{name}_{'costs' if costs else 'zero'}"])
            rel = np.abs(ours / other - 1.0)
            print(f"  equity agreement, {name} weights, {'costs on' if costs else 'zero cost'}: "
                  f"max |btlab/vectorbt - 1| per bar {rel.max():.2e}, final {rel[-1]:.2e} "
                  f"(final equity {ours[-1]:,.2f} vs {other[-1]:,.2f})")  # fmt: skip


def memory(ds: Any, weights: np.ndarray) -> None:
    bench = Btlab(ds, weights, True)
    n, k = ds.close.shape
    cell = n * k * 8 / 2**20
    bench.all()
    inputs = sum(a.nbytes for a in (*bench.bars, bench.target, bench.scale)) / 2**20
    tracemalloc.start()
    tracemalloc.reset_peak()
    sim = bench.engine()
    _, peak = tracemalloc.get_traced_memory()
    outputs = sum(a.nbytes for a in (sim.units, sim.cash, sim.equity, sim.borrow, sim.fills))
    print(f"  one (n, K) float64 array: {cell:.1f} MB; inputs (6 bar arrays, target, scale) "
          f"{inputs:.1f} MB")  # fmt: skip
    print(f"  run_engine: traced peak {peak / 2**20:.1f} MB, its outputs {outputs / 2**20:.1f} MB "
          f"(units, borrow, cash, equity, {sim.fills.shape[0]:,} fills)")  # fmt: skip
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    bench.metrics(sim)
    after, peak = tracemalloc.get_traced_memory()
    print(f"  marks + trades + compute_metrics: traced peak {(peak - before) / 2**20:.1f} MB above "
          f"its inputs ({(peak - before) / 2**20 / cell:.1f} (n, K) arrays), kept "
          f"{(after - before) / 2**20:.1f} MB")  # fmt: skip
    tracemalloc.stop()
    import resource

    print(
        f"  process peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectorbt-python", metavar="PYTHON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    from bench_validation import machine  # this folder is the script's first path entry

    import btlab

    print(f"machine: {machine()}")
    ds = dataset()
    n, k = ds.close.shape
    rows = weight_rows(k)
    benches = {name: Btlab(ds, w, True) for name, w in rows.items()}
    print(f"{k} symbols x {n:,} bars, monthly rebalance ({benches['equal'].schedule.shape[0]} "
          f"rebalances), {COMMISSION_BPS} bp commission, {SPREAD_BPS} bp spread")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "bars.npz")
        np.savez(
            npz, open=ds.open, close=ds.close, schedule=benches["equal"].schedule,
            cash=INITIAL_CASH, fees=COMMISSION_BPS / 1e4, slippage=SPREAD_BPS / 2 / 1e4, **rows,
        )  # fmt: skip
        if args.vectorbt_python:
            agreement(ds, rows, args.vectorbt_python, npz)
        figures: dict[str, list[float]] = {}
        for r in range(args.rounds):
            line = []
            for name, bench in benches.items():
                for what, fn in (("engine", bench.engine), ("kernel+metrics", bench.all)):
                    t = best(fn, args.repeat)
                    figures.setdefault(f"btlab {name} {what}", []).append(t)
                    line.append(f"{name} {what} {t * 1e3:.1f}")
            t = best(lambda: btlab.run(request(True)), max(3, args.repeat // 2))
            figures.setdefault("btlab.run equal (whole)", []).append(t)
            line.append(f"btlab.run {t * 1e3:.0f}")
            if args.vectorbt_python:
                theirs = vectorbt(args.vectorbt_python, npz, args.repeat, "time")
                for name in rows:
                    figures.setdefault(f"vectorbt {name}", []).append(theirs[name])
                    line.append(f"vectorbt {name} {theirs[name] * 1e3:.0f}")
            print(f"  round {r} (ms): " + ", ".join(line), flush=True)
    print("best over rounds:")
    for key, values in figures.items():
        print(f"  {key:<32} {min(values) * 1e3:8.1f} ms")
    if args.vectorbt_python:
        for name in rows:
            ours, theirs = (
                min(figures[f"btlab {name} kernel+metrics"]),
                min(figures[f"vectorbt {name}"]),
            )
            per_round = [
                v / b for b, v in zip(figures[f"btlab {name} kernel+metrics"], figures[f"vectorbt {name}"], strict=True)
            ]  # fmt: skip
            print(f"  {name} weights: btlab kernel+metrics is {theirs / ours:.1f}x faster than "
                  f"vectorbt (best vs best; per round {', '.join(f'{x:.1f}' for x in per_round)})")  # fmt: skip
    if args.memory:
        print("memory:")
        memory(ds, rows["equal"])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
