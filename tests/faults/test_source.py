"""The git remote going away: following goes on from the last applied commit, `status` says the source
is unreachable (Ready False FetchFailed), and the next commit is applied once the remote is back."""

from __future__ import annotations

import pytest

from tests.cli.test_follow import plane  # noqa: F401 - the fixture
from tests.controlplane import wait_for
from tests.projects import probe_service


# The in-process control plane's listening socket may be collected after its thread ends (a ResourceWarning
# pytest reports on an unrelated test); the process-level tests check that nothing is left running.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_a_remote_that_goes_away_is_reported_and_following_resumes_when_it_is_back(plane, tmp_path):
    cp = plane([probe_service("alpha")])
    cp.up("--interval", "1s")
    applied = cp.status()["revision"]
    cp.origin.path.rename(tmp_path / "away")
    unreachable = wait_for(lambda: next((c for c in cp.status()["conditions"] if c["type"] == "SourceReachable"),
                                        None), timeout=20, what="SourceReachable in status")
    assert (unreachable["status"], unreachable["reason"]) == ("False", "FetchFailed")
    ready = next(c for c in cp.status()["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "FetchFailed")
    assert str(cp.origin.path) in unreachable["message"]
    status = cp.status()
    assert status["revision"] == applied and cp.instances("alpha", "ready")   # still running what it had
    assert cp.request("GET", "/healthz").status_code == 200   # the loop and the follower both run
    (tmp_path / "away").rename(cp.origin.path)
    newer = cp.commit("alpha 2.0.0", [probe_service("alpha", version="2.0.0")])
    # Scheduled fetches back off while the remote is away; a webhook or `sync` need not wait for that.
    assert cp.cli("sync").stdout.strip() == newer
    wait_for(lambda: cp.status()["revision"] == newer, timeout=30, what="the next commit applied")
    assert not [c for c in cp.status()["conditions"] if c["reason"] == "FetchFailed"]
    cp.cli("rollout", "status", "alpha", "--timeout", "60")
