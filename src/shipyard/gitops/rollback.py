"""Rolling back is `git revert`: which commits undo the way back to a revision, and the commands to do it by hand."""

from __future__ import annotations

import shlex

from shipyard.source.errors import SourceError
from shipyard.source.git import Commit

MAX_COMMITS = 500  # how far back `rollback --to` looks


def commits_to_revert(history: list[Commit], target: Commit) -> list[Commit]:
    """The commits after TARGET in HISTORY (newest first): reverting them in this order brings TARGET back."""
    for index, commit in enumerate(history):
        if commit.sha == target.sha:
            if index == 0:
                raise SourceError(f"{target.short} is already the head: nothing to roll back")
            return history[:index]
    raise SourceError(f"{target.short} is not among the last {len(history)} commits of the followed branch")


def revert_script(url: str, ref: str, commits: list[Commit]) -> list[str]:
    """Shell commands that make the reverts in a fresh clone of URL and push them."""
    shas = " ".join(c.sha for c in commits)
    return [
        f"git clone --branch {shlex.quote(ref)} {shlex.quote(url)} shipyard-rollback",
        "cd shipyard-rollback",
        f"git revert --no-edit {shas}",
        f"git push origin {shlex.quote(ref)}",
    ]
