#!/usr/bin/env bash
# Installs the system tools Shipyard uses beyond Python packages: bubblewrap (instance isolation),
# and for the test suite and benchmarks Prometheus (the PromQL metric provider) and nginx (bench),
# docker-registry, skopeo, busybox-static and apache2-utils (artifacts), PostgreSQL, python3-psycopg2 and
# redis-server (backing databases).
# As root it installs them with apt-get; otherwise it says what is missing and carries on,
# because Shipyard still runs (without isolation) and says so in `shipyard status`.
set -euo pipefail
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# artifacts: the reference OCI registry, skopeo (test oracle), busybox-static (a full image in tests), htpasswd
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
# PostgreSQL: the server each environment runs for services' `databases:` (and psql/pg_dump for `shipyard db`)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
# the example shop's orders reaches PostgreSQL with the system python3 its sandbox runs (prod's DATABASE_URL)
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || missing+=(python3-psycopg2)
# Redis: the server each environment runs for `engine: redis` databases (and redis-cli for `shipyard db shell`)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# the dashboard's browser test (tests/ui/): headless Chromium driven by Selenium through chromedriver
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]} with apt-get" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup: ${missing[*]} not installed; instances will run without a sandbox." >&2
  echo "setup: install with: sudo apt-get install ${missing[*]}" >&2
fi
