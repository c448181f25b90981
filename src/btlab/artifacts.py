"""Run artifacts and the manifest that hashes them (SPEC §4).

Tables are Parquet written from Arrow arrays with fixed writer settings and floats rounded to
12 significant digits, so their bytes depend on the results, not on the last bit of a float.
JSON artifacts are canonical JSON. Everything is written into a temporary sibling folder and
renamed into place, so a reader never sees a half-written run. Folders get the mode of any new
folder (0777 less the umask: 0755 usually), files 0666 less the umask (0644).

An output folder is written where it is absent or empty; one holding anything else is replaced
only when asked (`overwrite`), or — with `replace_same_run` — where it holds the very run being
written (the same run hash: the same bytes by determinism).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from btlab import __version__

from .errors import RunError
from .hashing import SIGNIFICANT_DIGITS, canonical_bytes, sha256_hex

if TYPE_CHECKING:
    import pandas as pd

    from .portfolio_run import PortfolioResult
    from .run_result import RunResult

TABLES = ("equity", "fills", "trades")
MANIFEST = "manifest.json"
#: Manifest fields that record when, not what: left out of the run hash.
TIMESTAMP_FIELDS = ("created_at",)
#: Manifest fields that name things without changing what the run is: the symbol, where the
#: data was found, whether its timeframe was declared. Left out of the run hash, like timestamps.
LABEL_FIELDS = ("labels",)


def data_sections(config: Any, dataset: Any, identity: Any) -> dict[str, Any]:
    """The manifest's request (as hashed), data facts and labels of a run or sweep."""
    # here, not at the top: checking or verifying a folder (`btlab report`, `--out`) needs no engine
    from .pipeline import hashed_request, run_identity

    ident = identity if identity is not None else run_identity(config, dataset)
    meta = dataset.meta
    spec = config.data
    symbol = getattr(meta, "symbol", None)
    symbols = list(getattr(meta, "symbols", [symbol]))
    handed_in = spec.source == "synthetic" and ident.id == dataset.hash  # run(config, data=...)
    paths = getattr(spec, "paths", None)
    location = (
        getattr(spec, "path", None)
        or (f"{len(paths)} files" if paths else None)
        or (f"dataset {spec.id}" if spec.source == "dataset" else spec.source)
    )
    if handed_in:
        location = f"{meta.source} handed to run()"
    return {
        "request": hashed_request(config, ident),
        "dataset": meta.facts(),
        "labels": {
            "symbol": symbol if symbol is not None else ", ".join(symbols[:8]) + (
                f", ... ({len(symbols)} symbols)" if len(symbols) > 8 else ""),
            "source": meta.source, "location": str(location),
            "timeframe_declared": meta.timeframe_declared,
            "calendar_declared": meta.calendar_declared,
            # the data section as requested (the hashed request holds the data's identity):
            # what `btlab.load` re-loads the bars from (not where `location` says handed in)
            "data": spec.model_dump(mode="json"),
        },
    }  # fmt: skip


class OutputFolderTaken(RunError):
    """An output folder holds something other than the run about to be written there."""

    def __init__(self, folder: Path, reason: str, flag: str = "overwrite=True") -> None:
        self.folder = folder
        self.reason = reason
        super().__init__(f"output folder {folder} {reason} (pass {flag} to replace it)")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest a folder holds, or None where it has none that parses as a JSON object."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def folder_identity(config_hash: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest fields that decide a run's artifacts before they are computed: the config
    hash, the request as hashed (`pipeline.hashed_request`) and the engine's versions."""
    identity = {"config_hash": config_hash, "request": request,
                "engine_version": __version__, "versions": engine_versions()}  # fmt: skip
    parsed: dict[str, Any] = json.loads(canonical_bytes(identity))  # as a manifest holds them
    return parsed


def folder_conflict(folder: Path, identity: Mapping[str, Any] | None = None) -> str | None:
    """Why a run may not be written into `folder` without replacing something else; None where
    the folder is absent or empty, or holds a manifest agreeing with every field of `identity`."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "is a file, not a folder"
    if not any(folder.iterdir()):
        return None
    if identity is None:
        return "already exists and is not empty"
    held = read_manifest(folder)
    if held is None:
        return f"already exists and holds files that are not a btlab run (no readable {MANIFEST})"
    differs = [key for key, value in identity.items() if held.get(key) != value]
    if differs:
        return (
            f"already holds another run (run hash {str(held.get('run_hash'))[:16]}…, "
            f"created {held.get('created_at')}; its {' and '.join(differs)} differ)"
        )
    return None


def engine_versions() -> dict[str, str]:
    """Versions that can change results or artifact bytes."""
    return dict(_engine_versions())


@cache
def _engine_versions() -> dict[str, str]:  # fixed for the life of a process: looked up once
    return {name: version(name) for name in ("numpy", "numba", "pandas", "pyarrow")} | {
        "btlab": __version__
    }


def _round_column(values: np.ndarray) -> np.ndarray:
    # here, not at the top: checking or verifying a folder needs no numba (start-up time)
    from btlab.kernels.metrics import round_significant_nb

    if values.dtype.kind == "f":
        rounded: np.ndarray = round_significant_nb(
            np.ascontiguousarray(values, dtype=np.float64),
            SIGNIFICANT_DIGITS,
            np.empty(values.shape[0]),
        )
        return rounded
    return values


def _missing(value: Any, na: Any) -> bool:
    """None, NaN or pandas' NA (`na`: the caller imports pandas)."""
    return value is None or value is na or (isinstance(value, float) and math.isnan(value))


def _arrow_table(frame: pd.DataFrame) -> Any:
    """The frame as the Arrow table every artifact table is written from: floats rounded to
    SIGNIFICANT_DIGITS, text and mixed columns as strings, timestamps in UTC."""
    # imported here: checking or verifying a folder (the CLI's `report`, `--out`) needs neither
    import pandas as pd
    import pyarrow as pa

    columns: dict[str, pa.Array] = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            columns[name] = pa.array(
                col.to_numpy(dtype="datetime64[ns]"), type=pa.timestamp("ns", tz="UTC")
            )
        elif col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            # a missing value (None, NaN, NA: an axis whose only value is None, say) is a null,
            # not the text "None" or "nan" (pandas 3's `astype(str)` keeps it missing)
            columns[name] = pa.array(
                [None if _missing(v, pd.NA) else str(v) for v in col.tolist()], type=pa.string()
            )
        else:
            columns[name] = pa.array(_round_column(col.to_numpy()))
    return pa.table(columns)


#: The Parquet writer settings of every artifact table (deterministic bytes).
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd", "compression_level": 3, "use_dictionary": False,
    "write_statistics": False, "data_page_size": 1 << 20, "version": "2.6",
    "store_schema": False,
}  # fmt: skip


def table_bytes(frame: pd.DataFrame) -> bytes:
    """Deterministic Parquet bytes of a frame: rounded floats, fixed writer settings, no pandas metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(_arrow_table(frame), sink, **PARQUET_OPTIONS)
    return bytes(sink.getvalue().to_pybytes())


class TableSpool:
    """An artifact table written to a file as its rows arrive, in row groups of a fixed size
    (`rows_per_group`, whatever the sizes of the appended frames), so its bytes depend on the
    rows alone. The frames must share their columns; each is converted as `table_bytes` does,
    then cast to the first one's types (a column of None only in the first frame takes the
    later frames' type: the spool waits for a frame where no column is all null)."""

    def __init__(self, path: Path, rows_per_group: int = 1 << 16) -> None:
        self.path, self.rows_per_group = path, rows_per_group
        self._pending: list[Any] = []
        self._pending_rows = 0
        self._writer: Any = None
        self._schema: Any = None
        self.rows = 0

    def append(self, frame: pd.DataFrame) -> None:
        if frame.shape[0] == 0:
            return
        self._pending.append(_arrow_table(frame))
        self._pending_rows += frame.shape[0]
        self.rows += frame.shape[0]
        while self._pending_rows >= self.rows_per_group:
            self._write(self.rows_per_group)

    def _write(self, count: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._schema is None:
            self._schema = _unified_schema(self._pending)
        merged = pa.concat_tables([t.cast(self._schema) for t in self._pending])
        head, rest = merged.slice(0, count), merged.slice(count)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema, **PARQUET_OPTIONS)
        self._writer.write_table(head, row_group_size=count)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> Path:
        """Write what is left; returns the finished file."""
        if self._pending_rows:
            self._write(self._pending_rows)
        if self._writer is None:
            raise ValueError("a table spool needs at least one row")
        self._writer.close()
        return self.path


def _unified_schema(tables: Sequence[Any]) -> Any:
    """The first table's column types, a null column's type taken from a later table."""
    import pyarrow as pa

    fields = []
    for i, f in enumerate(tables[0].schema):
        kind = f.type
        if pa.types.is_null(kind):
            kind = next(
                (t.schema[i].type for t in tables if not pa.types.is_null(t.schema[i].type)),
                pa.float64(),
            )
        fields.append(pa.field(f.name, kind))
    return pa.schema(fields)


#: An artifact's content: its bytes, or a finished file on disk (a streamed sweep's table),
#: copied into the folder and hashed a block at a time instead of read into memory.
Payload = bytes | Path


def _entry(data: Payload) -> dict[str, Any]:
    if isinstance(data, Path):
        digest = hashlib.sha256()
        with data.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        return {"bytes": data.stat().st_size, "sha256": digest.hexdigest()}
    return {"bytes": len(data), "sha256": sha256_hex(data)}


def run_hash(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical manifest without timestamps and without the run hash itself."""
    left_out = (*TIMESTAMP_FIELDS, *LABEL_FIELDS, "run_hash")
    body = {k: v for k, v in manifest.items() if k not in left_out}
    return sha256_hex(canonical_bytes(body))


def artifact_payloads(result: RunResult | PortfolioResult) -> dict[str, bytes]:
    """Every artifact's bytes by file name (the manifest excepted): a single-symbol run's
    TABLES, a portfolio's PORTFOLIO_TABLES."""
    if hasattr(result, "table"):  # a PortfolioResult (not imported: see data_sections)
        portfolio = cast("PortfolioResult", result)
        tables = {name: portfolio.table(name) for name in portfolio.tables}
    else:
        tables = {name: getattr(result, name) for name in TABLES}
    payloads = {f"{name}.parquet": table_bytes(frame) for name, frame in tables.items()}
    payloads["metrics.json"] = canonical_bytes(result.metrics)
    payloads["validation.json"] = canonical_bytes(
        result.validation if result.validation is not None else {"enabled": False}
    )
    return payloads


def folder_manifest(
    config: Any,
    dataset: Any,
    identity: Any,
    config_hash: str,
    warnings: Iterable[Any],
    payloads: Mapping[str, Payload],
    kind: str | None = None,
) -> dict[str, Any]:
    """The manifest of an artifact folder (a run's, a sweep's, a walk-forward's: `kind` where it
    is not a run): engine, hashes, the request as hashed, the data facts, every artifact's size
    and sha256, the warnings, and the run hash over all of it."""
    manifest: dict[str, Any] = {
        "engine": "btlab",
        "engine_version": __version__,
        **({"kind": kind} if kind is not None else {}),
        "versions": engine_versions(),
        "config_hash": config_hash,
        "dataset_hash": dataset.hash,
        **data_sections(config, dataset, identity),
        "artifacts": {name: _entry(data) for name, data in sorted(payloads.items())},
        "warnings": [w.to_json() for w in warnings],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest["run_hash"] = run_hash(manifest)
    return manifest


def build_manifest(
    result: RunResult | PortfolioResult, payloads: Mapping[str, Payload]
) -> dict[str, Any]:
    return folder_manifest(
        result.config, result.dataset, result.identity, result.config_hash, result.warnings,
        payloads,
    )  # fmt: skip


def _write_files(folder: Path, files: Iterable[tuple[str, Payload]]) -> None:
    """Write the files, then fsync them all at once: concurrent fsyncs share one journal flush
    of the file system instead of paying one each (about 1 ms per file on ext4)."""
    handles = []
    try:
        for name, data in files:
            fh = open(folder / name, "wb")  # noqa: SIM115 - closed below, after the fsync
            handles.append(fh)
            if isinstance(data, Path):
                with data.open("rb") as src:
                    shutil.copyfileobj(src, fh, 1 << 20)
            else:
                fh.write(data)
            fh.flush()
        with ThreadPoolExecutor(max_workers=max(1, len(handles))) as pool:
            list(pool.map(lambda fh: os.fsync(fh.fileno()), handles))
    finally:
        for fh in handles:
            fh.close()


def write_run_folder(
    out: Path, files: Sequence[tuple[str, Payload]], *, overwrite: bool, run_hash: str | None
) -> None:
    """Write `files` as folder `out`, atomically: a temporary sibling folder renamed into place.

    Unless `overwrite`, a non-empty `out` is an OutputFolderTaken error — except, where
    `run_hash` is given, a folder whose manifest holds that run hash (the same run).
    """
    if not overwrite:
        reason = folder_conflict(out, None if run_hash is None else {"run_hash": run_hash})
        if reason is not None:
            raise OutputFolderTaken(out, reason)
    out.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not mkdtemp: the folder gets the umask's mode (0755) like its parents, not 0700
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        _write_files(tmp, files)
        if out.exists():
            trash = out.with_name(f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            out.rename(trash)
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_artifacts(
    result: RunResult | PortfolioResult,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    replace_same_run: bool = False,
) -> dict[str, Any]:
    """Write every artifact and `manifest.json` to `out_dir` atomically; returns the manifest.

    The files go to a temporary folder beside `out_dir` that is renamed into place only when
    complete. An existing non-empty `out_dir` is an error (OutputFolderTaken) unless
    `overwrite` (then it is replaced whole), or `replace_same_run` and it holds this run.
    """
    return write_result_folder(
        out_dir, lambda: artifact_payloads(result), lambda p: build_manifest(result, p),
        overwrite=overwrite, replace_same_run=replace_same_run,
    )  # fmt: skip


def write_result_folder(
    out_dir: str | Path,
    payloads: Callable[[], Mapping[str, Payload]],
    manifest: Callable[[Mapping[str, Payload]], dict[str, Any]],
    *,
    overwrite: bool = False,
    replace_same_run: bool = False,
) -> dict[str, Any]:
    """The one writer of an artifact folder: the folder rule checked before `payloads()` is
    built, its `manifest(payloads)`, then `write_run_folder`; returns the manifest."""
    out = Path(out_dir)
    if not overwrite and not replace_same_run and (reason := folder_conflict(out)):
        raise OutputFolderTaken(out, reason)  # before the payloads are built
    files = payloads()
    written = manifest(files)
    write_run_folder(
        out,
        [*files.items(), (MANIFEST, canonical_bytes(written))],
        overwrite=overwrite,
        run_hash=written["run_hash"] if replace_same_run else None,
    )
    return written


def verify_artifacts(out_dir: str | Path) -> list[str]:
    """Problems found checking a run folder against its manifest (empty when all is well)."""
    folder = Path(out_dir)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    problems = []
    for name, entry in manifest["artifacts"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        data = path.read_bytes()
        if len(data) != entry["bytes"] or sha256_hex(data) != entry["sha256"]:
            problems.append(f"{name}: bytes or sha256 differ from the manifest")
    if run_hash(manifest) != manifest.get("run_hash"):
        problems.append("manifest: run_hash does not match its content")
    return problems
