"""User code that registers features and strategies, imported before a request is resolved.

A plugin is any importable Python module whose import registers features (`@feature`) or
strategies (`@strategy`), as docs/extending.md shows. The CLI imports the modules named by
`--plugin MODULE` (repeatable, on `btlab run`, `sweep` and `serve`) and by ``BTLAB_PLUGINS``
(comma-separated); the service imports ``BTLAB_PLUGINS`` (its `plugins` setting) when its app
is created. A module is imported once per process (Python caches it), so naming it twice is
harmless. The module must be importable: installed, or its folder on ``PYTHONPATH``.

What a plugin registers is user code like any other (btlab.code_identity): each entry carries
its code's hash, which joins the config hash of the runs that use it, so a service restarted
with an edited plugin never serves a run of the earlier code from its store.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from importlib import import_module

from .errors import ConfigError

ENV = "BTLAB_PLUGINS"


def plugin_names(text: str | None) -> list[str]:
    """The module names of a comma-separated list (blanks dropped)."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def env_plugins(environ: Mapping[str, str] | None = None) -> list[str]:
    """The modules ``BTLAB_PLUGINS`` names."""
    return plugin_names((os.environ if environ is None else environ).get(ENV))


def load_plugins(modules: Iterable[str], source: str = ENV) -> list[str]:
    """Import each module; a ConfigError naming `source` (the flag or variable) and the module
    where one cannot be imported or fails while registering. Returns the names imported."""
    loaded = []
    for name in modules:
        try:
            import_module(name)
        except ModuleNotFoundError as exc:
            hint = " (is its folder on PYTHONPATH? e.g. PYTHONPATH=. btlab ...)"
            raise ConfigError(
                "cannot load a plugin",
                [(source, f"{name}: {exc}{hint if exc.name == name else ''}")],
            ) from None
        except Exception as exc:  # the plugin's own code failed: name it, keep its traceback
            raise ConfigError(
                "cannot load a plugin", [(source, f"{name}: {type(exc).__name__}: {exc}")]
            ) from exc
        loaded.append(name)
    return loaded


def add_plugin_argument(parser: argparse.ArgumentParser) -> None:
    """`--plugin MODULE` (repeatable) on a command of the CLI."""
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE",
        help="import MODULE first, to register its features and strategies (repeatable; "
        f"also ${ENV}, comma-separated)",
    )
