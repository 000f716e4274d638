"""A config repository's history: SOURCE (a local path or a git URL) resolved to commits and rendered offline.

A local path is read in place (any branch, tag or commit of that repository, the project's directory
found from the path), a URL through a mirror in the cache dir. Either way a revision is rendered from a
clean snapshot of its commit, so uncommitted changes never leak into it.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.source.errors import SourceError
from shipyard.source.git import Commit, LocalRepo, Mirror
from shipyard.source.gitcli import redact_url
from shipyard.spec.render import render

DEFAULT_REMOTE_REF = "main"
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?", re.IGNORECASE)


def cache_dir() -> Path:
    """Where mirrors of remote repositories live: `$SHIPYARD_CACHE_DIR/git`, else the XDG cache dir."""
    override = os.environ.get("SHIPYARD_CACHE_DIR")
    if override:
        return Path(override).expanduser() / "git"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "shipyard" / "git"


def is_url(source: str) -> bool:
    """Whether SOURCE names a remote repository rather than a local directory."""
    return "://" in source or (bool(_SCP_LIKE.match(source)) and not Path(source).exists())


def parse_date(text: str) -> datetime | None:
    """TEXT as an aware datetime when it is an ISO 8601 date or time (no zone: local time), else None."""
    if not _DATE.fullmatch(text.strip()):
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise SourceError(f"invalid date {text!r}: {exc}; expected e.g. 2024-05-01 or 2024-05-01T12:00:00Z") from None
    return when if when.tzinfo is not None else when.astimezone()


class History:
    """The commits of a config repository, with the project at SUBDIR, followed on branch REF."""

    def __init__(self, repository: LocalRepo | Mirror, label: str, subdir: str, ref: str) -> None:
        self._repository = repository
        self._fetched = False
        self.label = label  # for messages: the path, or the URL without credentials
        self.subdir = subdir  # the project's directory, relative to the repository's root ('' for the root)
        self.ref = ref

    @classmethod
    def open(cls, source: str, *, path: str | None = None, ref: str | None = None,
             cache: Path | None = None) -> History:
        """SOURCE (a directory in a git repository, a bare repository or a URL), its project at PATH below it.

        REF defaults to the branch checked out in a local working tree, else `main`.
        """
        if not is_url(source):
            local = Path(source).expanduser()
            if not local.is_dir():
                raise SourceError(f"no such directory: {source}")
            found = _working_tree(local.resolve())
            if found is not None:
                top, prefix = found
                subdir = _join(prefix, path)
                return cls(LocalRepo(top), source, subdir, ref or _current_branch(top))
            if not _is_bare(local):
                raise SourceError(f"{source} is not in a git repository: give a directory of a working tree, "
                                  "a bare repository or a git URL")
        mirror = Mirror(cache or cache_dir(), source)
        return cls(mirror, redact_url(str(source)), _join("", path), ref or DEFAULT_REMOTE_REF)

    def resolve(self, rev: str) -> Commit:
        """The commit REV names: a branch, tag, (short) sha or an expression like `main~1`."""
        if isinstance(self._repository, Mirror):
            if not self._fetched:
                return self._fetch(rev)  # the first question brings the mirror up to date
            try:
                return self._repository.resolve(rev)
            except SourceError:
                if not _FULL_SHA.fullmatch(rev):
                    raise SourceError(f"{rev!r} is not a branch, tag or commit of {self.label}") from None
                return self._fetch(rev)  # a commit no branch reaches (a pull request's head)
        return self._repository.resolve(rev)

    def find(self, at: str | None) -> Commit:
        """The commit AT names: a date (the newest commit on REF at or before it), a revision, or REF's head."""
        if at is None:
            return self.resolve(self.ref)
        when = parse_date(at)
        if when is None:
            return self.resolve(at)
        self.resolve(self.ref)  # fetches a mirror, and says so when REF does not exist
        return self._repository.commit_at(self.ref, when)

    @contextlib.contextmanager
    def checkout(self, commit: Commit) -> Iterator[Path]:
        """A clean snapshot of the project at COMMIT, in a temporary directory removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="shipyard-revision-") as scratch:
            yield self._repository.export(commit.sha, self.subdir or None, Path(scratch) / "project")

    def render(self, commit: Commit, environment: str, as_of: datetime | None = None) -> dict[str, Any]:
        """What `render -o json` prints for ENVIRONMENT as COMMIT defines it, its images resolved as of AS_OF
        (default: as the store has them now); raises SpecError when invalid."""
        with self.checkout(commit) as root:
            return render(root, environment, as_of).to_dict()

    def _fetch(self, rev: str) -> Commit:
        assert isinstance(self._repository, Mirror)
        commit = self._repository.fetch(rev)
        self._fetched = True
        return commit


def _working_tree(path: Path) -> tuple[Path, str] | None:
    """The top of the working tree holding PATH and PATH relative to it, or None outside of one."""
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate, path.relative_to(candidate).as_posix()
    return None


def _is_bare(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _current_branch(top: Path) -> str:
    """The branch checked out in the working tree at TOP; `HEAD` when detached or unreadable."""
    git = top / ".git"
    try:
        if git.is_file():  # a linked worktree or a submodule: `gitdir: PATH`
            git = (top / git.read_text().removeprefix("gitdir:").strip()).resolve()
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return "HEAD"
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: refs/heads/") else "HEAD"


def _join(prefix: str, path: str | None) -> str:
    """The project's directory relative to the repository's root: PREFIX, then PATH below it."""
    joined = posixpath.normpath(posixpath.join(prefix or ".", path or "."))
    if joined == ".." or joined.startswith("../") or posixpath.isabs(joined):
        raise SourceError(f"invalid --path {path!r}: it leads out of the repository")
    return "" if joined == "." else joined
