"""Walk-forward windows: the `walkforward` section of a request (train and test lengths in bars
or calendar units, rolling or anchored) and its resolution into bar ranges on a dataset.

Window `w` (0-based) steps by `test`: rolling, its train part starts `w` test lengths after the
first bar; anchored, it always starts at the first bar; either way the train part ends (and the
test part starts) `train + w * test` after the first bar, and the test part is `test` long. In
bars that is plain arithmetic; in calendar units (`"2Y"`, `"6M"`, `"13W"`, `"30D"`) each
boundary is a time (the first bar's timestamp plus the lengths, added as calendar offsets in
one step: `2Y + 3 * 6M` is 3.5 years to the day) and resolves to the first bar at or after it;
train and test are both bars or both calendar lengths.
A window counts only when the data reaches the end of its test part; the bars after the last
window's test part are left out (a `walkforward_tail` warning says how many).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field, field_validator, model_validator

from ..errors import ConfigError
from ..request_model import RequestModel

__all__ = ["CALENDAR_UNITS", "WalkForwardSpec", "Window", "WindowLength", "resolve_windows"]

#: Calendar units of a window length: years, months, weeks, days.
CALENDAR_UNITS = {"Y": "years", "M": "months", "W": "weeks", "D": "days"}
_CALENDAR = re.compile(r"^([1-9][0-9]{0,4})([YMWD])$")

#: Most windows one walk-forward may have.
MAX_WINDOWS = 1000


def _length(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a number of bars or a calendar length such as '2Y'")
    if isinstance(value, str):
        text = value.strip().upper()
        if text.isdigit():
            return int(text)
        if not _CALENDAR.match(text):
            raise ValueError(
                f"expected a number of bars or a calendar length N followed by Y, M, W or D "
                f"(e.g. '2Y', '6M', '13W', '30D'), got {value!r}"
            )
        return text
    return value


#: A window length: bars (an int >= 2) or a calendar length ("2Y", "6M", "13W", "30D").
WindowLength = Annotated[int | str, BeforeValidator(_length)]


class WalkForwardSpec(RequestModel):
    """How the data is cut into train and test parts (see `btlab.walkforward.windows`)."""

    train: WindowLength = Field(
        description="Train part of each window: bars (int) or a calendar length ('2Y', '6M', "
        "'13W', '30D')."
    )
    test: WindowLength = Field(
        description="Test part of each window, also the step between windows: bars or a "
        "calendar length."
    )
    mode: Literal["rolling", "anchored"] = Field(
        "rolling",
        description="rolling: the train part keeps its length and moves by `test`; anchored: "
        "it starts at the first bar and grows by `test`.",
    )

    @field_validator("train", "test")
    @classmethod
    def _at_least_two(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError(f"a window part needs at least 2 bars, got {value}")
        return value

    @model_validator(mode="after")
    def _same_kind(self) -> WalkForwardSpec:
        if isinstance(self.train, str) != isinstance(self.test, str):
            raise ValueError(
                "train and test must both be bars or both calendar lengths, got "
                f"train={self.train!r}, test={self.test!r}"
            )
        return self


@dataclass(frozen=True)
class Window:
    """One window's bar ranges: train `[train_start, train_end)`, test `[train_end, test_end)`."""

    index: int
    train_start: int
    train_end: int
    test_end: int

    @property
    def test_start(self) -> int:
        return self.train_end


def _offset(*parts: tuple[str, int]) -> pd.DateOffset:
    kwargs: dict[str, int] = {}
    for text, times in parts:
        match = _CALENDAR.match(text)
        assert match is not None
        unit = CALENDAR_UNITS[match.group(2)]
        kwargs[unit] = kwargs.get(unit, 0) + int(match.group(1)) * times
    return pd.DateOffset(
        years=kwargs.get("years", 0), months=kwargs.get("months", 0),
        weeks=kwargs.get("weeks", 0), days=kwargs.get("days", 0),
    )  # fmt: skip


def _bar_boundaries(spec: WalkForwardSpec, n: int) -> list[tuple[int, int, int]]:
    assert isinstance(spec.train, int) and isinstance(spec.test, int)
    out = []
    w = 0
    while spec.train + (w + 1) * spec.test <= n and w <= MAX_WINDOWS:
        start = 0 if spec.mode == "anchored" else w * spec.test
        out.append((start, spec.train + w * spec.test, spec.train + (w + 1) * spec.test))
        w += 1
    return out


def _calendar_boundaries(spec: WalkForwardSpec, ts: np.ndarray) -> list[tuple[int, int, int]]:
    assert isinstance(spec.train, str) and isinstance(spec.test, str)
    origin = pd.Timestamp(int(ts[0]), tz="UTC")
    last = int(ts[-1])

    def bar(*parts: tuple[str, int]) -> tuple[int, int]:
        t = int((origin + _offset(*parts)).value)
        return int(np.searchsorted(ts, t, side="left")), t

    out = []
    for w in range(MAX_WINDOWS + 1):
        _end, end_time = bar((spec.train, 1), (spec.test, w + 1))
        if end_time > last:  # the data does not reach the end of this test part
            break
        start = 0 if spec.mode == "anchored" else bar((spec.test, w))[0]
        out.append((start, bar((spec.train, 1), (spec.test, w))[0], _end))
    return out


def resolve_windows(spec: WalkForwardSpec, ts: np.ndarray, warmup: int = 0) -> list[Window]:
    """The windows of `spec` on bars with timestamps `ts` (int64 ns), or a ConfigError naming
    `walkforward.train` / `walkforward.test` with the numbers: no window fits the data, a part
    with fewer than 2 bars, a first train part within the grid's warm-up (`warmup`: bars before
    every combination's features are known), more than MAX_WINDOWS windows."""
    n = int(ts.shape[0])
    calendar = isinstance(spec.train, str)
    bounds = _calendar_boundaries(spec, ts) if calendar and n else _bar_boundaries(spec, n)
    if not bounds:
        raise ConfigError(
            "invalid walk-forward windows",
            [("walkforward", f"train {spec.train!r} + test {spec.test!r} do not fit the data: "
              f"{n} bars" + (f" from {_iso(ts[0])} to {_iso(ts[-1])}" if n else "")
              + "; no window has a complete test part")],
        )  # fmt: skip
    if len(bounds) > MAX_WINDOWS:
        raise ConfigError(
            "invalid walk-forward windows",
            [("walkforward.test", f"more than {MAX_WINDOWS} windows; use a longer test part")],
        )
    windows = [Window(w, *b) for w, b in enumerate(bounds)]
    for w in windows:
        for name, lo, hi in (
            ("train", w.train_start, w.train_end),
            ("test", w.train_end, w.test_end),
        ):
            if hi - lo < 2:
                raise ConfigError(
                    "invalid walk-forward windows",
                    [(f"walkforward.{name}", f"window {w.index}'s {name} part has {hi - lo} "
                      f"bar(s) (bars {lo}..{hi - 1}); each part needs at least 2")],
                )  # fmt: skip
    first = windows[0]
    if first.train_end - first.train_start <= warmup:
        raise ConfigError(
            "invalid walk-forward windows",
            [("walkforward.train", f"the first window's train part has "
              f"{first.train_end - first.train_start} bars, not more than the grid's warm-up "
              f"of {warmup} bars (before it, some combination's features are unknown)")],
        )  # fmt: skip
    return windows


def _iso(ns: int) -> str:
    return str(pd.Timestamp(int(ns), tz="UTC").strftime("%Y-%m-%d"))
