"""Component test of the built orders artifact, started by `shipyard pipeline run` at $TARGET_URL."""

import os
import sys
import urllib.request

target = os.environ["TARGET_URL"]
with urllib.request.urlopen(target + "/healthz", timeout=5) as response:
    assert response.status == 200, response.status
    assert response.headers["X-Service-Version"] == os.environ.get("EXPECTED_VERSION", response.headers["X-Service-Version"])
with urllib.request.urlopen(target + "/orders", timeout=5) as response:
    assert response.status == 200, response.status
print("orders component test passed against", target)
sys.exit(0)
