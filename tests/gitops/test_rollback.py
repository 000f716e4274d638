"""Which commits a rollback reverts, and the commands printed when Shipyard cannot commit itself."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shipyard.gitops.rollback import commits_to_revert, revert_script
from shipyard.source.errors import SourceError
from shipyard.source.git import Commit


def commit(n: int) -> Commit:
    return Commit(f"{n:040d}", "Ada", "ada@example.com", datetime(2024, 1, n, tzinfo=timezone.utc), f"c{n}", "")


HISTORY = [commit(4), commit(3), commit(2), commit(1)]  # newest first


def test_reverts_every_commit_after_the_target_newest_first():
    assert commits_to_revert(HISTORY, commit(2)) == [commit(4), commit(3)]
    assert commits_to_revert(HISTORY, commit(3)) == [commit(4)]


@pytest.mark.parametrize("target, message", [(commit(4), "already the head"), (commit(9), "is not among the last 4")])
def test_nothing_to_revert_is_an_error(target, message):
    with pytest.raises(SourceError, match=message):
        commits_to_revert(HISTORY, target)


def test_revert_script_clones_reverts_and_pushes():
    script = revert_script("https://***@git.example.com/shop.git", "main", [commit(4), commit(3)])
    assert script == [
        "git clone --branch main 'https://***@git.example.com/shop.git' shipyard-rollback",
        "cd shipyard-rollback",
        f"git revert --no-edit {commit(4).sha} {commit(3).sha}",
        "git push origin main",
    ]
