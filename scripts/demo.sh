#!/usr/bin/env bash
# `make demo`: start the example shop's dev environment for real and show where to reach it.
set -euo pipefail
cd "$(dirname "$0")/.."
shipyard=.venv/bin/shipyard
state=.shipyard/dev

# `make demo` runs `make setup` first, which published the shop's artifacts into the embedded store
# (scripts/shop-artifacts.sh); the environments run them by version.
$shipyard artifacts list
echo

if [ -f "$state/control.json" ] && $shipyard status --state-dir "$state" >/dev/null 2>&1; then
  echo "demo: the dev environment is already running; re-applying the example" >&2
  $shipyard apply examples/shop --state-dir "$state" >/dev/null
else
  $shipyard up examples/shop --env dev --state-dir "$state" --detach
fi

echo
$shipyard status --state-dir "$state"
echo
ingress=$($shipyard status --state-dir "$state" -o json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin).get("ingress") or "")')
if [ -n "$ingress" ]; then
  echo "Open the shop:        $ingress/"
  echo "Catalog via ingress:  curl -H 'Host: catalog.shop.localhost' $ingress/products"
fi
cat <<TXT
Follow events:        $shipyard events -f --state-dir $state
Logs of a service:    $shipyard logs catalog --state-dir $state
Stop everything:      $shipyard down --state-dir $state
TXT
