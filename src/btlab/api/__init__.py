"""btlab over HTTP: `create_app(settings)` builds the FastAPI app (routes per SPEC §7).

    uvicorn "btlab.api:create_app" --factory      # or: btlab serve [--host] [--port]

Imports the core; nothing in the core imports this package.
"""

from __future__ import annotations

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
