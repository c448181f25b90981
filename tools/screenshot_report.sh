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
  done
done
# trim the blank below each page and cut it into slices an image viewer shows at full size
.venv/bin/python - "$out" <<'PY'
import sys
from pathlib import Path

from PIL import Image  # matplotlib's dependency

for png in sorted(p for p in Path(sys.argv[1]).glob("*.png") if "-part" not in p.stem):
    image = Image.open(png).convert("RGB")
    width, height = image.size
    last = image.crop((0, height - 1, width, height)).tobytes()
    bottom = height
    while bottom > 1 and image.crop((0, bottom - 1, width, bottom)).tobytes() == last:
        bottom -= 1
    image = image.crop((0, 0, width, min(height, bottom + 20)))
    image.save(png)
    for i, top in enumerate(range(0, image.size[1], 1600)):
        image.crop((0, top, width, min(image.size[1], top + 1600))).save(
            png.with_name(f"{png.stem}-part{i}.png"))
    print(png, image.size)
PY
