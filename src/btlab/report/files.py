"""Writing a report beside its artifacts, and reusing one this renderer already wrote."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .cells import esc
from .page import generator_tag, render_report

REPORT_NAME = "report.html"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # as the artifacts beside it (mkstemp makes files 0600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Render the report of `folder` and write it to `out` (default `folder/report.html`)
    through a temporary file renamed into place; returns the path written."""
    path = Path(out) if out is not None else Path(folder) / REPORT_NAME
    _write_atomic(path, render_report(folder))
    return path


def cached_report(folder: str | Path) -> Path:
    """`folder/report.html` when this renderer wrote it (same generator tag), else a new one."""
    path = Path(folder) / REPORT_NAME
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024).decode("utf-8", errors="replace")
    except FileNotFoundError:
        head = ""
    if f'<meta name="generator" content="{esc(generator_tag())}">' in head:
        return path
    return write_report(folder)
