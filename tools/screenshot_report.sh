#!/usr/bin/env bash
# Render a run, a portfolio and a sweep report and screenshot each at 1400 px and 700 px wide
# in headless Chromium, to look at the layout by eye (not run by CI).
#
#   tools/screenshot_report.sh [OUT_DIR]      (default: /tmp/btlab-screens)
#
# Needs Debian's chromium (`apt-get install -y chromium`) and the worktree's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/btlab-screens}
mkdir -p "$out"
.venv/bin/python - "$out" <<'PY'
import sys

import btlab
from btlab.report import write_report
from btlab.sweep import run_sweep

out = sys.argv[1]
run = btlab.run(btlab.load_preset("sma_cross_daily"))
btlab.write_artifacts(run, f"{out}/run", overwrite=True)
portfolio = btlab.run(btlab.load_preset("equal_weight_monthly"))
btlab.write_artifacts(portfolio, f"{out}/portfolio", overwrite=True)
sweep = run_sweep({
    "preset": "sma_cross_daily",
    "overrides": {"validation": {"permutation": {"n_permutations": 20}}},
    "grid": {"fast": [5, 10, 20, 40], "slow": [50, 100, 200]},
})
sweep.write_artifacts(f"{out}/sweep", overwrite=True)
for kind in ("run", "portfolio", "sweep"):
    print(write_report(f"{out}/{kind}"))
PY
browser=$(command -v chromium || command -v chromium-browser)
for kind in run portfolio sweep; do
  for width in 1400 700; do
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
      --screenshot="$out/$kind-$width.png" --window-size="$width,${HEIGHT:-9000}" \
      "file://$out/$kind/report.html" 2>/dev/null
    echo "$out/$kind-$width.png"
  done
done
