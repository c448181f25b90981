"""Where a run's artifacts are: an artifact folder's path, or a stored run's id resolved to its
folder in a btlab home. The one resolution of `btlab report RUN` and `btlab.load`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .artifacts import MANIFEST
from .errors import NotFoundError
from .store import RunStateError, Store

__all__ = ["run_folder"]


def run_folder(folder_or_run_id: str | os.PathLike[str], store: Store | None, home: Path) -> Path:
    """The artifact folder `folder_or_run_id` names: a path holding a manifest, else the folder of
    the completed run of that id in `store` (None: there is no btlab home at `home`).

    NotFoundError for a path without a manifest, an unknown run or one without artifacts;
    RunStateError for a run that has not completed.
    """
    text = os.fspath(folder_or_run_id)
    given = Path(text).expanduser()
    if (given / MANIFEST).is_file():
        return given
    if given.exists():
        raise NotFoundError(f"{text} is not an artifact folder: it has no {MANIFEST}")
    if not isinstance(folder_or_run_id, str) or "/" in text or text.startswith((".", "~")):
        raise NotFoundError(f"no such artifact folder: {text}")
    nor = f"nor is there an artifact folder {given}"
    if store is None:
        raise NotFoundError(f"unknown run id {text!r}: there is no btlab home at {home}; {nor}")
    try:
        run = store.get_run(text)
    except NotFoundError as exc:
        raise NotFoundError(f"{exc} in home {store.home}; {nor}") from None
    folder = store.run_dir(run.id)
    if run.status != "completed":
        raise RunStateError(f"run {run.id} is {run.status}; only a completed run has artifacts")
    if not (folder / MANIFEST).is_file():
        raise NotFoundError(f"run {run.id} has no artifacts (pruned or deleted)")
    return folder
