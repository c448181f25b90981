"""The offline HTML report of a run or a sweep, rendered from its artifact folder.

`render_report(folder)` reads what a run wrote (`manifest.json`, `metrics.json`,
`validation.json`, `equity.parquet`, `fills.parquet`, `trades.parquet`; a sweep folder has
`sweep.json`, `sweep.parquet` and `heatmap.json` instead of the three tables; a portfolio
folder also has `positions.parquet` and `symbols.parquet`, see `portfolio`) and returns one
self-contained HTML page. `write_report` writes it (temporary file + rename), `cached_report`
reuses a report already written by this same renderer. `btlab run`, `btlab report` and
`GET /runs/{id}/report` all go through `write_report`, so the three show the same page.

Choices:

- **Charts are matplotlib SVG, inline.** Interactive JavaScript libraries (plotly, bokeh)
  embed one megabyte or more of script to work offline, over the size budget; matplotlib draws
  static SVG of a few tens of KB per chart. Text stays text (`svg.fonttype = "none"`), so the
  page is searchable and the browser's sans-serif font draws the labels. The XML prologue,
  metadata and namespace URLs are stripped: the page holds no URL of any kind and needs no
  network. Each chart gets its own `svg.hashsalt`, so the ids matplotlib derives for clip
  paths and markers are stable from render to render and distinct between the charts of one
  page; its per-element ids (`figure_1`, `axes_1`, ...) repeat across charts and are dropped.
- **Downsampling keeps extremes.** A series longer than `2 * BUCKETS` points is cut into
  `BUCKETS` equal runs of bars, and only each run's minimum and maximum (in time order) plus the
  first and last bar are drawn: every drawdown trough and equity spike survives, and a
  100,000-bar run draws at most ~1,200 points per line. Trade markers are thinned to at most
  one of each kind (long entry, short entry, exit) per 1/160 of the time axis
  (`MARKER_COLUMNS`), so a run with thousands of trades still draws a few hundred markers.
- **Monthly returns** are compounded from the equity at each month's last bar (UTC months),
  the first month against the initial cash, so the months of a year multiply to the yearly
  total and all months to the total return. Months without bars are left blank.
- **The report is a view, not an artifact.** Its bytes depend on matplotlib's version, which
  `run_hash` does not pin, so it is never listed in the manifest and never hashed. For one
  renderer (the `generator` meta tag: report format, btlab and matplotlib versions) the same
  artifacts give the same bytes: no timestamps, no random ids, fixed number formats.
- Every number cell carries the unrounded value in `data-value` (JSON), so a script (or a
  test) can read the page without parsing the display format.
- A sweep stores no per-bar path, so its report has the heatmap of the objective, the best
  combination, the top combinations and PBO, but no equity, drawdown, position or monthly
  charts; it prints the `btlab run` command that reproduces the best combination for those.
- matplotlib keeps global settings; renders in one process are serialized by a lock.

The parts: `data` reads the folder into `ReportData`, `cells` formats one value, `charts` draws
the SVG figures, `tables` builds the metric, monthly, validation and fold tables, `portfolio`
draws a portfolio's weights chart and its per-symbol and trades tables, `page` assembles the
page, `files` writes it and reuses a cached one.
"""

from __future__ import annotations

from .charts import BUCKETS, minmax_indices
from .data import ReportData, load_report_data
from .files import REPORT_NAME, cached_report, write_report
from .page import generator_tag, render_html, render_report
from .tables import monthly_returns

__all__ = [
    "BUCKETS",
    "REPORT_NAME",
    "ReportData",
    "cached_report",
    "generator_tag",
    "load_report_data",
    "minmax_indices",
    "monthly_returns",
    "render_html",
    "render_report",
    "write_report",
]
