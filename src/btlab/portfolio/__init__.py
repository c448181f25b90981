"""Portfolios (SPEC §8): many symbols traded from one cash account.

`dataset` holds `PortfolioDataset` (K single-symbol datasets on one union clock), `meta` its
facts (`PortfolioMeta`), `loaders` the ways in (a long table, a mapping, files, a folder, a
request's data section: `load_portfolio`), `synthetic` the K-symbol one-factor provider.

Names are imported when first asked for (PEP 562, as `btlab` does): `btlab.synthetic_data`
reads the portfolio bounds from `dataset` while `loaders` and `synthetic` import it, so this
package's `__init__` imports none of its modules itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dataset import MAX_CELLS, MAX_SYMBOLS, PortfolioDataset, from_members
    from .loaders import (
        as_portfolio,
        folder_files,
        from_frames,
        from_long,
        load_files,
        load_folder,
        load_path,
        load_portfolio,
    )
    from .meta import PortfolioMeta, SymbolSpan
    from .synthetic import generate_portfolio

#: Where each public name lives (the module imported on first access).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("MAX_CELLS", "MAX_SYMBOLS", "PortfolioDataset", "from_members"), "dataset"),
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
        ),
        "loaders",
    ),
    **dict.fromkeys(("PortfolioMeta", "SymbolSpan"), "meta"),
    "generate_portfolio": "synthetic",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'btlab.portfolio' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
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
]
