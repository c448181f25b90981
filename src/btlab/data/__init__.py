"""Datasets (SPEC §1): loading and validating bars, the content hash and the metadata.

A `Dataset` is one symbol at one timeframe: `ts` (int64 ns, UTC) and float64 `open`, `high`, `low`,
`close`, `volume` (read-only arrays), an optional `adj_close`, and its metadata. Every loader goes
through `from_dataframe`, which applies every rejection rule and raises a `DataError` naming the
rule and the first offending rows (0-based data rows, header excluded). Loading never writes.

The package, imported downward only: `meta` (the Dataset, its hash and DatasetMeta) <- `frames`
(a DataFrame validated into a Dataset) <- `files` (CSV, Parquet, uploads) <- `sources` (the
request's data, adjustment, the synthetic provider's entry). Timeframes, calendars and periods
per year are read in `btlab.timeframes`; the synthetic provider lives in `btlab.synthetic_data`;
portfolios (many symbols) in `btlab.portfolio`.
"""

from __future__ import annotations

from ..timeframes import CALENDARS as CALENDARS
from ..timeframes import DAY_SECONDS as DAY_SECONDS
from ..timeframes import Calendar as Calendar
from ..timeframes import DataInference as DataInference
from ..timeframes import find_gaps as find_gaps
from ..timeframes import format_timeframe as format_timeframe
from ..timeframes import infer_calendar as infer_calendar
from ..timeframes import infer_timeframe as infer_timeframe
from ..timeframes import parse_timeframe as parse_timeframe
from ..timeframes import periods_per_year as periods_per_year
from ..timeframes import read_timeframe as read_timeframe
from .files import load_bytes as load_bytes
from .files import load_csv as load_csv
from .files import load_file as load_file
from .files import load_parquet as load_parquet
from .files import read_bytes as read_bytes
from .files import read_frame as read_frame
from .files import save_parquet as save_parquet
from .frames import ADJ_ALIASES as ADJ_ALIASES
from .frames import MAX_REPORTED_ROWS as MAX_REPORTED_ROWS
from .frames import PRICE_COLUMNS as PRICE_COLUMNS
from .frames import REQUIRED_COLUMNS as REQUIRED_COLUMNS
from .frames import TS_ALIASES as TS_ALIASES
from .frames import _build as _build
from .frames import check_timestamps as check_timestamps
from .frames import declare as declare
from .frames import from_dataframe as from_dataframe
from .meta import HASH_FORMAT as HASH_FORMAT
from .meta import NS_PER_SECOND as NS_PER_SECOND
from .meta import Dataset as Dataset
from .meta import DatasetMeta as DatasetMeta
from .meta import dataset_hash as dataset_hash
from .sources import adjust as adjust
from .sources import replace as replace
