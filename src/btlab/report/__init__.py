"""The offline HTML report of a run or a sweep, rendered from its artifact folder.

`render_report(folder)` reads what a run wrote (`manifest.json`, `metrics.json`,
`validation.json`, `equity.parquet`, `fills.parquet`, `trades.parquet`; a sweep folder has
`sweep.json`, `sweep.parquet`, `heatmap.json` and `best_equity.parquet` instead of the three
tables; a portfolio
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
  (`MARKER_COLUMNS`; the price chart's buy and sell markers per 1/100), so a run with thousands of trades still draws a few hundred markers.
- **Monthly returns** are compounded from the equity at each month's last bar (UTC months),
  the first month against the initial cash, so the months of a year multiply to the yearly
  total and all months to the total return. Months without bars are left blank.
- **The report is a view, not an artifact.** Its bytes depend on matplotlib's version, which
  `run_hash` does not pin, so it is never listed in the manifest and never hashed. For one
  renderer (the `generator` meta tag: report format, btlab and matplotlib versions) the same
  artifacts give the same bytes: no timestamps, no random ids, fixed number formats.
- Every number cell carries the unrounded value in `data-value` (JSON), so a script (or a
  test) can read the page without parsing the display format.
- **What a run page shows** (docs/concepts.md, "The report"): equity (with the benchmark where
  the equity table has a `benchmark` column; log scale where the curves span more than 10×,
  `charts.log_scale`), drawdown, price with the fills (from the equity table's `close`),
  position, rolling Sharpe and volatility, the return histogram with mean and VaR 95 %, the
  five deepest drawdown periods (numbers in `stats`, one place each), trades, monthly returns.
- **Responsive**: the charts are 9 in wide with 9.5 pt text and scale to the page's width,
  readable from 700 px (scaled to about 0.75×) to 1400 px (about 1.2×); under 760 px the
  side-by-side blocks stack; wide tables scroll inside their box, never the page
  (`tools/screenshot_report.sh` renders three reports at both widths to look at).
- A sweep keeps the best combination's equity table (`best_equity.parquet`), so its report
  has that equity and drawdown, the heatmap of the objective, the best and top combinations
  and PBO; for the position, trades and monthly returns it prints the `btlab run` command that
  reproduces the best combination (an older sweep folder without the table shows no equity).
- matplotlib keeps global settings; renders in one process are serialized by a lock.

The parts: `data` reads the folder into `ReportData`, `cells` formats one value, `charts` draws
the SVG figures, `stats` computes the rolling, histogram and drawdown-period numbers, `returns`
draws and tabulates them, `tables` builds the metric, monthly, validation and fold tables, `portfolio`
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
