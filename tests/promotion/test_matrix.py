"""The version matrix: declared from git, running from each control plane, unknown when unreachable."""

from __future__ import annotations

from shipyard.promotion.matrix import matrix

DEV = {"services": [{"name": "catalog", "version": "1.1.0", "artifact": {"source": "image", "digest": "sha256:b"},
                     "rollout": {"status": "complete", "updated_at": 50.0, "started_at": 40.0},
                     "verified": {"version": "1.1.0", "state": "verified", "since": 60.0}},
                    {"name": "orders", "version": "1.0.0", "artifact": {"source": "local"},
                     "rollout": {"status": "progressing", "phase": "step", "weight": 25, "started_at": 70.0}}]}


def test_the_matrix_has_a_cell_per_service_and_environment():
    result = matrix(["dev", "prod"], {"dev": {"catalog": "1.1.0", "orders": "1.0.0"},
                                       "prod": {"catalog": "1.0.0", "orders": "1.0.0"}}, {"dev": DEV, "prod": None})
    assert result["environments"] == ["dev", "prod"]
    assert result["services"]["catalog"]["dev"] == {"declared": "1.1.0", "running": "1.1.0", "digest": "sha256:b",
                                                    "rollout": "complete", "verified": "verified", "since": 50.0}
    assert result["services"]["orders"]["dev"]["rollout"] == "progressing (step, 25%)"
    assert result["services"]["orders"]["dev"]["verified"] is None
    assert result["services"]["catalog"]["prod"] == {"declared": "1.0.0", "running": "unknown", "digest": "unknown",
                                                     "rollout": "unknown", "verified": "unknown", "since": "unknown"}


def test_a_service_declared_but_not_running_has_empty_cells():
    result = matrix(["dev"], {"dev": {"catalog": "1.1.0"}}, {"dev": {"services": []}})
    assert result["services"]["catalog"]["dev"]["running"] is None
