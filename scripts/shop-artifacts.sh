#!/usr/bin/env bash
# Publishes the example shop's artifacts into the store its config reads (the embedded default store,
# $SHIPYARD_HOME/artifacts, else ~/.shipyard/artifacts; or $SHIPYARD_STORE), each service at the version
# services/NAME.yaml names, through its pipeline (unit tests, one build, a component test of that build,
# publish). A version already in the store is left as it is, so `shipyard validate examples/shop` and
# `shipyard up examples/shop` work after `make setup`, and re-running changes nothing — unless it was
# built from a revision older than the app's last commit (a store kept from an earlier checkout): then it
# is published again from the current code (the tag moves; environments keep the digests they pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
shipyard=.venv/bin/shipyard
for app in examples/shop/apps/*/; do
  name=$(basename "$app")
  version=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "examples/shop/services/$name.yaml")
  if record=$($shipyard artifacts inspect "$name:$version" -o json 2>/dev/null); then
    stored=$(printf %s "$record" | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["source"]["revision"])')
    last=$(git log -1 --format=%H -- "$app" 2>/dev/null || true)
    if [ -z "$last" ] || git merge-base --is-ancestor "$last" "$stored" 2>/dev/null; then
      continue   # built from the app's current committed code (or not a git checkout: nothing to compare)
    fi
    echo "setup: $name $version in the store was built from older code (revision ${stored:0:12})" >&2
  fi
  echo "setup: publishing the example shop's $name $version: unit tests, one build, a component test of that build" >&2
  if ! $shipyard pipeline run "$app" --version "$version" 2>&1 | sed 's/^/  /' >&2; then
    echo "setup: the pipeline of $name failed; the example shop cannot start until it passes" >&2
    exit 1
  fi
done
