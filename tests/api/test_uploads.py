"""Uploads: wide headers are refused fast, and a broken row is named by its rule and data row."""

from __future__ import annotations

import io
import time

import httpx
import pandas as pd
import pytest

import btlab
from btlab.data import load_bytes
from btlab.datafiles import MAX_COLUMNS
from btlab.errors import DataError

HEADER = "ts,open,high,low,close,volume\n"
ROWS = [f"2020-01-{d:02d},1,1.5,0.5,1.2,100\n" for d in range(1, 8)]


def _csv(*lines: str) -> bytes:
    return (HEADER + "".join(lines)).encode()


def _error(content: bytes, fmt: str = "csv") -> DataError:
    with pytest.raises(DataError) as caught:
        load_bytes(content, fmt=fmt)
    return caught.value


@pytest.mark.parametrize("columns", [30_000, 100_000])
def test_a_wide_header_is_refused_at_once(columns: int) -> None:
    header = ",".join(f"c{i}" for i in range(columns)).encode() + b"\n"
    start = time.perf_counter()
    error = _error(header)
    assert time.perf_counter() - start < 2.0
    assert error.rule == "too_many_columns" and f"{columns} columns" in str(error)


def test_a_wide_parquet_file_is_refused_from_its_footer() -> None:
    frame = pd.DataFrame({f"c{i}": [1.0] for i in range(MAX_COLUMNS + 1)})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    error = _error(buffer.getvalue(), "parquet")
    assert error.rule == "too_many_columns"


def test_column_names_are_normalized_in_linear_time() -> None:
    frame = btlab.synthetic(bars=3, seed=1).to_frame()
    wide = pd.concat(
        [frame, pd.DataFrame({f"x{i}": [0.0] * 3 for i in range(MAX_COLUMNS - 7)})], axis=1
    )
    start = time.perf_counter()
    assert len(btlab.from_dataframe(wide)) == 3
    huge = pd.DataFrame({f"x{i}": [0.0] for i in range(20_000)})
    with pytest.raises(DataError, match="too_many_columns"):
        btlab.from_dataframe(huge)
    assert time.perf_counter() - start < 2.0


def test_a_short_row_is_a_ragged_row_not_a_missing_price() -> None:
    error = _error(_csv(*ROWS[:3], "2020-01-04,1,1.5\n", *ROWS[4:]))
    assert error.rule == "ragged_row" and error.rows == [3]
    assert "data row 3 (line 5 of the upload) has 3 fields, fewer than the header's 6" in str(error)


def test_a_long_row_names_the_data_row_not_a_pandas_line() -> None:
    error = _error(_csv(*ROWS[:2], "\n", "2020-01-03,1,1.5,0.5,1.2,100,7\n", *ROWS[3:]))
    assert error.rule == "ragged_row" and error.rows == [2], error  # the blank line is no row
    assert "data row 2 (line 5 of the upload) has 7 fields, more than the header's 6" in str(error)
    first = _error(_csv("2020-01-01,1,1.5,0.5,1.2,100,7\n", *ROWS[1:]))  # pandas' index guess
    assert first.rule == "ragged_row" and first.rows == [0]


def test_a_trailing_empty_field_is_still_a_missing_value() -> None:
    error = _error(_csv(*ROWS[:2], "2020-01-03,1,1.5,0.5,1.2,\n", *ROWS[3:]))
    assert error.rule == "non_finite_volume" and error.rows == [2]


def test_binary_bytes_are_named_as_such() -> None:
    error = _error(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert error.rule == "unreadable_file" and "binary data" in str(error)
    assert "line" not in str(error)
    text = _error(_csv(*ROWS[:2]) + b"2020-01-03,\xff\xfe,1,1,1,1\n")
    assert (
        text.rule == "unreadable_file" and "not UTF-8 text" in str(text) and "line 4" in str(text)
    )


def test_the_service_names_the_rule_and_row(client: httpx.Client) -> None:
    content = _csv(*ROWS[:5], "2020-01-06,1\n", *ROWS[6:])
    response = client.post("/datasets", content=content, headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    body = response.json()
    assert body["details"][0]["loc"] == "ragged_row" and "data row 5" in body["message"]
    header = ",".join(f"c{i}" for i in range(30_000)).encode() + b"\n"
    start = time.perf_counter()
    response = client.post("/datasets", content=header, headers={"Content-Type": "text/csv"})
    assert (
        response.status_code == 422 and response.json()["details"][0]["loc"] == "too_many_columns"
    )
    assert time.perf_counter() - start < 5.0
