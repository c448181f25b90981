"""Portfolios (SPEC §8): many symbols traded from one cash account.

`dataset` holds `PortfolioDataset` (K single-symbol datasets on one union clock), `meta` its
facts (`PortfolioMeta`), `loaders` the ways in (a long table, a mapping, files, a folder, a
request's data section: `load_portfolio`), `synthetic` the K-symbol one-factor provider,
`features` the `PortfolioFeatureStore` (each feature on each symbol's own bars, shifted onto
the clock) and `strategies` the portfolio strategy registry (per_symbol, equal_weight,
inverse_vol, xs_momentum).

Names are imported when first asked for (PEP 562, as `btlab` does), so importing one module
of the package imports none of the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..data.portfolio import MAX_CELLS, MAX_SYMBOLS, PortfolioDataset, from_members
    from ..data.portfolio_meta import PortfolioMeta, SymbolSpan
    from .loaders import (
        as_portfolio,
        folder_files,
        from_frames,
        from_long,
        load_files,
        load_folder,
        load_path,
        load_portfolio,
        load_upload,
    )
    from .synthetic import generate_portfolio

#: Where each public name lives (the module imported on first access; the dataset and its
#: facts sit in btlab.data, below the store, which keeps portfolios).
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ("MAX_CELLS", "MAX_SYMBOLS", "PortfolioDataset", "from_members"), "btlab.data.portfolio"
    ),
    **dict.fromkeys(
        (
            "as_portfolio",
            "folder_files",
            "from_frames",
            "from_long",
            "load_files",
            "load_folder",
            "load_path",
            "load_portfolio",
            "load_upload",
        ),
        "btlab.portfolio.loaders",
    ),
    **dict.fromkeys(("PortfolioMeta", "SymbolSpan"), "btlab.data.portfolio_meta"),
    "generate_portfolio": "btlab.portfolio.synthetic",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'btlab.portfolio' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "MAX_CELLS",
    "MAX_SYMBOLS",
    "PortfolioDataset",
    "PortfolioMeta",
    "SymbolSpan",
    "as_portfolio",
    "folder_files",
    "from_frames",
    "from_long",
    "from_members",
    "generate_portfolio",
    "load_files",
    "load_folder",
    "load_path",
    "load_portfolio",
    "load_upload",
]
