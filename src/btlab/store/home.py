"""The home folder: where the database, run artifacts and dataset files live, and reading them.

`Home` makes the folders and serves a run's files without following links; the database and
the transactions are `Database`'s (db.py), built on it.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import NotFoundError

DB_NAME = "btlab.sqlite3"


def default_home() -> Path:
    """``$BTLAB_HOME`` or ``~/.btlab``."""
    env = os.environ.get("BTLAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".btlab"


class Home:
    """The folders of one btlab home (made if missing): ``runs/``, ``datasets/`` and the database."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.runs_dir = self.home / "runs"
        self.datasets_dir = self.home / "datasets"
        self.db_path = self.home / DB_NAME
        for folder in (self.home, self.runs_dir, self.datasets_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def run_dir(self, run_id: str) -> Path:
        """The artifact folder of a run (exists only for completed runs)."""
        if not run_id or not all(c in "0123456789abcdef" for c in run_id):
            raise NotFoundError(f"unknown run id {run_id!r}")
        return self.runs_dir / run_id

    def open_run_file(self, run_id: str, name: str) -> BinaryIO:
        """A file of a run's artifact folder, opened for reading without following links.

        NotFoundError when the folder or the file is missing, a symbolic link or not a regular
        file: a link planted under runs/ must not serve a file from elsewhere.
        """
        folder = self.run_dir(run_id)
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise NotFoundError(f"run {run_id} has no file {name!r}")
        nofollow = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            dir_fd = os.open(folder, nofollow | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            raise NotFoundError(f"run {run_id} has no artifacts (pruned or deleted)") from None
        except OSError:
            raise NotFoundError(
                f"the artifact folder of run {run_id} is a link or not a folder; btlab serves "
                "no links under runs/"
            ) from None
        try:
            fd = os.open(name, nofollow, dir_fd=dir_fd)
        except FileNotFoundError:
            raise NotFoundError(f"{name!r} of run {run_id} is gone (pruned or deleted)") from None
        except OSError:
            raise NotFoundError(
                f"{name!r} of run {run_id} is a link or unreadable; btlab serves no links under runs/"
            ) from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotFoundError(f"{name!r} of run {run_id} is not a regular file")
        return os.fdopen(fd, "rb")

    def _remove_folder(self, run_id: str) -> None:
        shutil.rmtree(self.runs_dir / run_id, ignore_errors=True)
