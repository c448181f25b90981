"""How one value is shown in a report cell: display formats, the raw value, HTML escaping."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..metric_registry import METRICS


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any, kind: str) -> str:
    """A number as shown: pct, ratio, prob, money, int, bars, float1, bool; '—' when missing."""
    if isinstance(value, bool) or kind == "bool":
        return "—" if value is None else ("yes" if value else "no")
    if value is None or isinstance(value, str):
        return "—" if value is None else value
    if not isinstance(value, int | float):
        return json_value(value)
    if not math.isfinite(value):
        return "—" if math.isnan(value) else ("∞" if value > 0 else "-∞")
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "ratio":
        return f"{value:.3f}"
    if kind == "prob":
        return f"{value:.4f}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind in ("int", "bars"):
        return f"{round(value):,}" + (" bars" if kind == "bars" else "")
    if kind == "float1":
        return f"{value:,.1f}"
    return f"{value:,.6g}"


def json_value(value: Any) -> str:
    """The raw value for a data-value attribute: JSON, NaN/inf as null (as the artifacts)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, np.generic):
            return clean(v.item())
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), separators=(",", ":"), sort_keys=True)


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def sign_class(value: Any) -> str:
    if not is_finite_number(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


def figure_html(chart_id: str, svg: str, caption: str) -> str:
    """A chart in its figure, with its caption."""
    return (
        f'<figure id="{chart_id}" class="chart">{svg}'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def cell(value: Any, kind: str, *, signed: bool = False) -> str:
    """A number cell: the value as shown, and unrounded (JSON) in data-value."""
    cls = " ".join(c for c in ("num", sign_class(value) if signed else "") if c)
    return f'<td class="{cls}" data-value="{esc(json_value(value))}">{esc(fmt(value, kind))}</td>'


#: How the report shows each metric kind of `metric_registry` (`fmt`'s kinds).
_SHOWN_AS = {"fraction": "pct", "ratio": "ratio", "currency": "money", "count": "int",
             "bars": "bars", "number": "float1", "flag": "bool"}  # fmt: skip
KINDS = {m.name: _SHOWN_AS[m.kind] for m in METRICS}
LABELS = {m.name: m.label for m in METRICS}
SIGNED = {m.name for m in METRICS if m.signed}


def params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json_value(v)}" for k, v in sorted(params.items())) or "—"
