"""Before a control plane starts following a repository: fetch its head and validate it, from the command line."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from shipyard.errors import SpecError
from shipyard.gitops.settings import APPLIED_KEY, SourceSettings
from shipyard.source.errors import SourceError
from shipyard.source.git import Commit, Mirror
from shipyard.spec.render import render
from shipyard.state.store import Store


class InvalidHead(SpecError):
    """The followed branch's head does not render; carries the commit for the message."""

    def __init__(self, commit: Commit, problems: SpecError) -> None:
        self.commit = commit
        super().__init__(problems.problems)


def precheck(settings: SourceSettings, state_dir: Path, environment: str, warn: Callable[[str], None]) -> None:
    """Fetch and render the head of the followed ref, into the state dir's mirror.

    Raises SourceError or InvalidHead, unless the state dir already runs a commit of this source: then the
    control plane can come back without the network, and the problem is only a warning.
    """
    try:
        mirror = Mirror(state_dir / "git", settings.url)
        commit = mirror.fetch(settings.ref)
        with tempfile.TemporaryDirectory(prefix="shipyard-head-") as scratch:
            root = mirror.export(commit.sha, settings.path or None, Path(scratch) / "project")
            try:
                render(root, environment)
            except SpecError as exc:
                raise InvalidHead(commit, exc) from None
    except (SourceError, InvalidHead) as exc:
        applied = _applied(state_dir, settings)
        if applied is None:
            raise
        what = f"commit {exc.commit.short} is invalid" if isinstance(exc, InvalidHead) else str(exc)
        warn(f"{what}; the control plane comes back on commit {applied[:12]}, the last one applied")


def _applied(state_dir: Path, settings: SourceSettings) -> str | None:
    database = state_dir / "state.db"
    if not database.exists():
        return None
    store = Store(database)
    try:
        applied = store.get(APPLIED_KEY)
    finally:
        store.close()
    if applied and (applied.get("url"), applied.get("path")) == (settings.url, settings.path):
        return str(applied["sha"])
    return None
