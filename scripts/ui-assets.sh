#!/usr/bin/env bash
# Installs the dashboard's chart library (Chart.js, from the npm registry) into
# src/shipyard/ui/static/vendor/, where the control plane serves it at /ui/static/vendor/chart.umd.js.
# Not committed (see .gitignore); without it the rollout view shows its numbers without the chart.
set -euo pipefail
cd "$(dirname "$0")/.."
target=src/shipyard/ui/static/vendor
[ -f "$target/chart.umd.js" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found; the dashboard's charts stay off (apt-get install npm, then make setup)" >&2
  exit 0
fi
work=build/ui-assets
mkdir -p "$work" "$target"
npm install --silent --no-audit --no-fund --prefix "$work" chart.js@4 >/dev/null
cp "$work/node_modules/chart.js/dist/chart.umd.js" "$target/chart.umd.js"
cp "$work/node_modules/chart.js/LICENSE.md" "$target/chart.js-LICENSE.md"
