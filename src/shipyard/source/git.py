"""Git repositories as Shipyard sees them: a fetched mirror, commits, snapshots, and local reverts."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from shipyard.source.errors import SourceError
from shipyard.source.credentials import helper_args, helper_env, load_password, save_password, split_credentials
from shipyard.source.gitcli import normalize_url, redact_url, run_git, summarise

FETCH_TIMEOUT = 300.0
LOCAL_TIMEOUT = 60.0

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
_FIELDS = ("%H", "%an", "%ae", "%cI", "%s", "%b")
_FORMAT = "--format=" + "%x00".join(_FIELDS)


@dataclass(frozen=True)
class Commit:
    """One commit. `date` is the committer date: when the commit landed, which `commit_at` also uses."""

    sha: str
    author: str
    email: str
    date: datetime
    message: str
    body: str

    @property
    def short(self) -> str:
        return self.sha[:12]


class _Repository:
    """Read-only queries shared by a mirror and a local working tree."""

    def __init__(self, base: list[str], label: str, timeout: float) -> None:
        self._base = base  # the git options that select this repository
        self._label = label
        self.timeout = timeout

    def __str__(self) -> str:
        return self._label

    def _require_exists(self) -> None:
        """Raise SourceError when there is no repository to read yet."""

    def resolve(self, rev: str) -> Commit:
        """The commit REV names: a sha, short sha, branch, tag or an expression like `main~1`."""
        result = self._log(["-1", "--no-walk"], rev)
        if isinstance(result, str):
            raise SourceError(f"cannot resolve {rev!r} in {self}: {result}")
        return result[0]

    def log(self, ref: str, limit: int = 20) -> list[Commit]:
        """The newest LIMIT commits reachable from REF, newest first."""
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        result = self._log([f"--max-count={limit}"], ref)
        if isinstance(result, str):
            raise SourceError(f"cannot read the history of {ref!r} in {self}: {result}")
        return result

    def commit_at(self, ref: str, when: datetime) -> Commit:
        """The newest commit on REF's first-parent line committed at or before WHEN (an aware datetime)."""
        if when.tzinfo is None:
            raise ValueError("commit_at needs a timezone-aware datetime")
        before = f"--before={int(when.timestamp())} +0000"
        result = self._log(["-1", "--first-parent", before], ref)
        if isinstance(result, str):
            raise SourceError(f"cannot read the history of {ref!r} in {self}: {result}")
        if not result:
            raise SourceError(f"no commit on {ref!r} in {self} at or before {when.isoformat()}")
        return result[0]

    def changed_paths(self, a: str, b: str) -> list[str]:
        """The paths that differ between revisions A and B (a rename lists both names), sorted."""
        self._require_exists()
        out = self._git(
            "diff", "--name-only", "-z", "--no-renames", "--end-of-options",
            _commit_rev(a), _commit_rev(b), "--",
            what=f"cannot compare {a!r} and {b!r} in {self}",
        )  # fmt: skip
        return sorted(path for path in out.split("\0") if path)

    def export(self, commit_sha: str, subdir: str | None, dest: Path) -> Path:
        """Write the tree of COMMIT_SHA (or its SUBDIR) to DEST as a fresh directory, and return DEST.

        The snapshot is what a checkout of that commit holds (files, exec bits, symlinks; not
        submodules). It is built beside DEST and renamed into place, so DEST is either absent or
        complete; a DEST already exported from the same commit and subdir is reused as it is.
        """
        commit = self.resolve(commit_sha)
        sub = _clean_subdir(subdir)
        tree_ish = f"{commit.sha}:{sub}"  # also what the marker beside DEST records
        marker = dest.parent / f".{dest.name}.source"
        if _is_snapshot(dest, marker, tree_ish):
            return dest
        if dest.exists():
            raise SourceError(f"cannot export to {dest}: it exists and is not a snapshot of {tree_ish}")
        self._require_tree(commit, sub)
        try:
            self._write_snapshot(tree_ish, dest, marker)
        except OSError as exc:
            raise SourceError(f"cannot export {commit.short} of {self} to {dest}: {exc}") from exc
        return dest

    def _write_snapshot(self, tree_ish: str, dest: Path, marker: Path) -> None:
        """Check TREE_ISH out beside DEST with a private index, then rename it into place."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
        try:
            tree = scratch / "tree"
            tree.mkdir()
            index = {"GIT_INDEX_FILE": str(scratch / "index")}
            what = f"cannot export {tree_ish} of {self}"
            self._git("read-tree", tree_ish, env=index, what=what)
            self._git("--work-tree", str(tree), "checkout-index", "--all", env=index, what=what)
            (scratch / "marker").write_text(f"{tree_ish}\n")
            os.replace(scratch / "marker", marker)
            try:
                tree.rename(dest)
            except OSError:
                if not _is_snapshot(dest, marker, tree_ish):  # else another process exported it first
                    raise SourceError(f"cannot export to {dest}: it appeared while exporting") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _require_tree(self, commit: Commit, sub: str) -> None:
        if not sub:
            return
        kind = self._try_git("cat-file", "-t", f"{commit.sha}:{sub}")
        if kind is None:
            raise SourceError(f"no directory {sub!r} at commit {commit.short} of {self}")
        if kind.strip() != "tree":
            raise SourceError(f"{sub!r} at commit {commit.short} of {self} is a file, not a directory")

    def _log(self, options: list[str], rev: str) -> list[Commit] | str:
        """`git log OPTIONS REV` as commits, or git's error summarised."""
        self._require_exists()
        args = ["-c", "log.showSignature=false", "log", "-z", _FORMAT, *options]
        result = run_git(
            [*self._base, *args, "--end-of-options", _commit_rev(rev), "--"], timeout=self.timeout
        )
        if result.returncode != 0:
            return _reason(result.stderr)
        return _parse_commits(result.stdout)

    def _git(
        self, *args: str, what: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> str:
        """Run git in this repository and return stdout; failure raises SourceError('WHAT: reason')."""
        try:
            result = run_git([*self._base, *args], timeout=self.timeout, env=env, stdin=stdin)
        except SourceError as exc:
            raise SourceError(f"{what}: {exc}") from None
        if result.returncode != 0:  # some commands (commit) explain themselves on stdout
            raise SourceError(f"{what}: {_reason(result.stderr or result.stdout)}")
        return result.stdout

    def _try_git(self, *args: str) -> str | None:
        """Run git in this repository; stdout, or None when it fails."""
        result = run_git([*self._base, *args], timeout=self.timeout)
        return result.stdout if result.returncode == 0 else None


class Mirror(_Repository):
    """A bare mirror of the branches and tags of URL, kept under CACHE_DIR, one per URL.

    URL is `https://`, `http://`, `ssh://`, `git://`, `file://`, `user@host:path`, or a local path
    (resolved against the current directory). Fetches hold a lock file, so processes and threads may
    share a cache dir; reads do not need it, since git updates refs atomically.
    """

    def __init__(self, cache_dir: Path, url: str | Path, *, timeout: float = FETCH_TIMEOUT) -> None:
        self.url, inline = split_credentials(normalize_url(url))  # a token never goes on git's command line
        self.cache_dir = cache_dir
        if inline is not None:
            save_password(cache_dir, inline)
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        slug = re.sub(r"[^\w.-]", "_", self.url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))[:40]
        self.path = cache_dir / f"{slug}-{digest}.git"
        super().__init__(["--git-dir", str(self.path)], redact_url(self.url), timeout)

    def fetch(self, ref: str) -> Commit:
        """Bring the mirror up to date (branches and tags, deletions included) and resolve REF."""
        _commit_rev(ref)
        try:
            with self._locked():
                self._update(ref)
        except OSError as exc:
            raise SourceError(f"cannot fetch {self}: {exc}") from exc
        try:
            return self.resolve(ref)
        except SourceError:
            raise SourceError(f"{ref!r} is not a branch, tag or commit of {self}") from None

    def _update(self, ref: str) -> None:
        self._ensure_created()
        if _FULL_SHA.fullmatch(ref) and self._has_commit(ref):
            return  # a commit never changes: no need to ask the remote
        self._clear_stale_locks()
        self._fetch(*_REFSPECS, prune=True)
        if _FULL_SHA.fullmatch(ref) and not self._has_commit(ref):
            with contextlib.suppress(SourceError):  # servers may refuse a commit no ref reaches
                self._fetch(ref)

    def _fetch(self, *refspecs: str, prune: bool = False) -> None:
        # Auto-gc runs in the foreground, so it too is covered by the lock and the timeout.
        args = ["-c", "gc.autoDetach=false", "fetch", "--quiet", "--no-write-fetch-head"]
        password = load_password(self.cache_dir)
        if password is not None:
            args, env = [*helper_args(), *args], helper_env(self.url, password)
        else:
            env = None
        try:
            self._git(
                *args, *(["--prune"] if prune else []), self.url, *refspecs, what=f"cannot fetch {self}", env=env
            )
        except SourceError as exc:
            raise SourceError(str(exc).replace(self.url, str(self))) from None  # git may echo a token

    def _require_exists(self) -> None:
        if not self._created():
            raise SourceError(f"the mirror of {self} has not been fetched yet: fetch a ref first")

    def _created(self) -> bool:
        return (self.path / "HEAD").is_file()

    def _has_commit(self, sha: str) -> bool:
        return self._try_git("cat-file", "-e", f"{sha}^{{commit}}") is not None

    def _ensure_created(self) -> None:
        """Create the bare repository, atomically, so that a half-made one never sits at `path`."""
        if self._created():
            return
        for leftover in self.cache_dir.glob(f".{self.path.name}.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=f".{self.path.name}.tmp-"))
        result = run_git(["init", "--bare", "--quiet", str(scratch)], timeout=LOCAL_TIMEOUT)
        if result.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise SourceError(f"cannot create a mirror in {self.cache_dir}: {summarise(result.stderr)}")
        scratch.rename(self.path)

    def _clear_stale_locks(self) -> None:
        """Remove ref lock files a killed fetch left behind; under our lock, no live git owns one."""
        for name in ("packed-refs.lock", "shallow.lock", "config.lock", "HEAD.lock"):
            (self.path / name).unlink(missing_ok=True)
        for lock in (self.path / "refs").rglob("*.lock"):
            lock.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # A fetch may run twice (branches, then a lone commit), each bounded by the timeout.
        deadline = time.monotonic() + 2 * self.timeout + 10
        with open(self.path.with_suffix(".lock"), "a") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise SourceError(f"cannot fetch {self}: another fetch holds {lock.name}") from None
                    time.sleep(0.05)
            yield  # closing the file releases the lock


class LocalRepo(_Repository):
    """A local, non-bare repository Shipyard follows directly: it can commit rollbacks to it.

    BRANCH is the branch Shipyard follows; when given, `revert` refuses to commit on another one.
    """

    def __init__(self, path: Path, branch: str | None = None, *, timeout: float = LOCAL_TIMEOUT) -> None:
        self.path = path.expanduser().resolve()
        self.branch = branch.removeprefix("refs/heads/") if branch else None
        super().__init__(["-C", str(self.path)], str(self.path), timeout)

    def is_writable_local(self) -> bool:
        """Whether PATH is in a working tree (not a bare repository) that this process may write."""
        out = self._try_git("rev-parse", "--is-bare-repository", "--show-toplevel", "--absolute-git-dir")
        if out is None:
            return False
        bare, top, git_dir = out.splitlines()
        return bare == "false" and os.access(top, os.W_OK) and os.access(git_dir, os.W_OK)

    def revert(self, commit_sha: str, message: str | None = None) -> Commit:
        """Commit the revert of COMMIT_SHA on the checked-out branch and return the new commit.

        MESSAGE replaces git's `Revert "…"` subject; the `This reverts commit …` line is kept.
        Refuses on uncommitted changes, a detached HEAD, another branch than the followed one, or a
        commit not on the branch. A conflicting revert is aborted, leaving the tree as it was.
        """
        target = self.resolve(commit_sha)
        what = f"cannot revert {target.short} in {self}"
        self._check_revertable(target, what)
        mainline = ["-m", "1"] if self._is_merge(target) else []
        env = self._identity_env()
        try:
            if message is None:
                self._git("revert", "--no-edit", *mainline, target.sha, env=env, what=what)
            else:
                self._git("revert", "--no-commit", *mainline, target.sha, env=env, what=what)
                text = f"{message.rstrip()}\n\nThis reverts commit {target.sha}.\n"
                self._git("commit", "--quiet", "--file=-", env=env, stdin=text, what=what)
        except SourceError as exc:
            conflicts = (self._try_git("diff", "--name-only", "--diff-filter=U") or "").split()
            reason = f"{what}: conflict in {', '.join(conflicts)}" if conflicts else str(exc)
            self._try_git("revert", "--abort")
            raise SourceError(
                f"{reason}; nothing was changed, revert by hand: {self._hint(target)}"
            ) from None
        return self.resolve("HEAD")

    def commit_file(self, relative: str, text: str, message: str) -> Commit:
        """Write RELATIVE (a path in the working tree) with TEXT and commit only that file on the current branch.

        Refuses a detached HEAD or another branch than the followed one; other uncommitted changes are
        left as they are and not included.
        """
        what = f"cannot commit {relative} in {self}"
        if not self.is_writable_local():
            raise SourceError(f"{what}: not a working tree this process can write")
        current = self._try_git("symbolic-ref", "--quiet", "--short", "HEAD")
        if current is None:
            raise SourceError(f"{what}: HEAD is detached; check out {self.branch or 'a branch'} first")
        if self.branch and current.strip() != self.branch:
            raise SourceError(f"{what}: {current.strip()!r} is checked out, but Shipyard follows {self.branch!r}")
        top = Path(self._git("rev-parse", "--show-toplevel", what=what).strip())
        path = (self.path / relative).resolve()
        if top != path and top not in path.parents:
            raise SourceError(f"{what}: the file is outside the repository")
        temporary = path.with_name(f".{path.name}.shipyard-tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
        env = self._identity_env()
        self._git("add", "--", str(path), what=what)
        self._git("commit", "--quiet", "--file=-", "--", str(path), env=env, stdin=message, what=what)
        return self.resolve("HEAD")

    def upstream(self) -> str | None:
        """The remote branch the current branch tracks (`origin/main`), or None."""
        out = self._try_git("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
        return out.strip() if out else None

    def push(self) -> str:
        """Push the current branch to its upstream; returns the upstream's name."""
        upstream = self.upstream()
        if upstream is None:
            raise SourceError(f"cannot push from {self}: the branch tracks no remote branch")
        remote, _, branch = upstream.partition("/")
        self._git("push", "--quiet", remote, f"HEAD:{branch}", what=f"cannot push {self} to {upstream}")
        return upstream

    def revert_commands(self, commit_sha: str) -> list[str]:
        """The shell commands that make the same revert by hand, one per line."""
        target = self.resolve(commit_sha)
        commands = [f"cd {shlex.quote(str(self.path))}"]
        if self.branch:
            commands.append(f"git switch {shlex.quote(self.branch)}")
        mainline = "-m 1 " if self._is_merge(target) else ""
        commands.append(f"git revert --no-edit {mainline}{target.sha}")
        return commands

    def _check_revertable(self, target: Commit, what: str) -> None:
        if not self.is_writable_local():
            raise SourceError(f"{what}: not a working tree this process can write")
        current = self._try_git("symbolic-ref", "--quiet", "--short", "HEAD")
        if current is None:
            raise SourceError(f"{what}: HEAD is detached; check out {self.branch or 'a branch'} first")
        current = current.strip()
        if self.branch and current != self.branch:
            raise SourceError(f"{what}: {current!r} is checked out, but Shipyard follows {self.branch!r}")
        status = self._git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no", what=what)
        if status.strip():
            changed = status.splitlines()
            raise SourceError(
                f"{what}: the working tree has uncommitted changes ({len(changed)} files, e.g."
                f" {changed[0][3:]}); commit or stash them first"
            )
        if self._try_git("merge-base", "--is-ancestor", target.sha, "HEAD") is None:
            raise SourceError(f"{what}: the commit is not on {current!r}")

    def _is_merge(self, commit: Commit) -> bool:
        parents = self._git(
            "rev-list", "--parents", "-n", "1", commit.sha, what=f"cannot read {commit.short}"
        )
        return len(parents.split()) > 2

    def _identity_env(self) -> dict[str, str]:
        """Commit as Shipyard when git knows no user identity (a server account, a fresh machine)."""
        if self._try_git("var", "GIT_COMMITTER_IDENT") is not None:
            return {}
        identity = {"NAME": "Shipyard", "EMAIL": "shipyard@localhost"}
        return {
            f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER") for key, value in identity.items()
        }

    def _hint(self, target: Commit) -> str:
        return "; ".join(self.revert_commands(target.sha))


def _commit_rev(rev: str) -> str:
    """REV as a revision argument that must name a commit; refuses option-like and empty text."""
    if not rev or rev.startswith("-") or any(ch.isspace() or ch == "\0" for ch in rev):
        raise SourceError(f"invalid revision {rev!r}: expected a branch, tag or commit")
    return f"{rev}^{{commit}}"


def _reason(stderr: str) -> str:
    """git's error in one line, without the `^{commit}` this module adds to revisions."""
    return summarise(stderr).replace("^{commit}", "")


def _parse_commits(out: str) -> list[Commit]:
    fields = out.split("\0")
    count = len(_FIELDS)
    return [
        Commit(
            sha=sha,
            author=author,
            email=email,
            date=datetime.fromisoformat(date),
            message=subject,
            body=body.strip("\n"),
        )
        for sha, author, email, date, subject, body in (
            fields[i : i + count] for i in range(0, len(fields) - count + 1, count)
        )
    ]


def _clean_subdir(subdir: str | None) -> str:
    """SUBDIR as a repository-relative POSIX path ('' for the root); refuses escapes."""
    if not subdir:
        return ""
    path = PurePosixPath(subdir.strip())
    if path.is_absolute() or ".." in path.parts:
        raise SourceError(f"invalid subdirectory {subdir!r}: expected a path inside the repository")
    return "" if str(path) == "." else str(path)


def _is_snapshot(dest: Path, marker: Path, tree_ish: str) -> bool:
    try:
        return dest.is_dir() and marker.read_text().strip() == tree_ish
    except OSError:
        return False


class WorkClone(_Repository):
    """A working clone of URL under CACHE_DIR that a control plane commits to (automation and promotion
    commits) and pushes back, with the same credentials it fetches with (never on a command line)."""

    def __init__(self, cache_dir: Path, url: str | Path, branch: str, identity: tuple[str, str] | None = None, *,
                 timeout: float = FETCH_TIMEOUT) -> None:
        self.identity = identity   # (name, email) of the commits; None: git's own, else Shipyard's
        self.url, inline = split_credentials(normalize_url(url))
        self.cache_dir = cache_dir
        if inline is not None:
            save_password(cache_dir, inline)
        self.branch = branch.removeprefix("refs/heads/")
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.path = cache_dir / f"work-{digest}"
        super().__init__(["-C", str(self.path)], redact_url(self.url), timeout)

    def _remote_env(self) -> tuple[list[str], dict[str, str] | None]:
        password = load_password(self.cache_dir)
        if password is None:
            return [], None
        return helper_args(), helper_env(self.url, password)

    def _sync(self) -> None:
        """Make the working tree exactly the remote branch's head."""
        if not (self.path / ".git").is_dir():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.path, ignore_errors=True)
            result = run_git(["init", "--quiet", str(self.path)], timeout=LOCAL_TIMEOUT)
            if result.returncode != 0:
                raise SourceError(f"cannot create a working clone in {self.cache_dir}: {summarise(result.stderr)}")
        args, env = self._remote_env()
        self._git(*args, "fetch", "--quiet", "--no-write-fetch-head", self.url,
                  f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}", what=f"cannot fetch {self}", env=env)
        self._git("checkout", "--quiet", "-B", self.branch, f"refs/remotes/origin/{self.branch}",
                  what=f"cannot check out {self.branch} of {self}")
        self._git("reset", "--quiet", "--hard", f"refs/remotes/origin/{self.branch}", what=f"cannot reset {self}")

    def change(self, relative: str, edit: Callable[[str], str | None], message: str | Callable[[str], str],
               attempts: int = 3) -> Commit | None:
        """Commit EDIT(text of RELATIVE) on the branch's head and push it; None when EDIT changes nothing.
        MESSAGE may be a function of the file's old text.

        A push that loses a race with another commit is retried on the new head (EDIT runs again).
        """
        for attempt in range(attempts):
            self._sync()
            path = self.path / relative
            old = path.read_text() if path.is_file() else ""
            new = edit(old)
            if new is None or new == old:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new)
            env = LocalRepo(self.path)._identity_env() if self.identity is None else {
                f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER")
                for key, value in zip(("NAME", "EMAIL"), self.identity)}
            self._git("add", "--", relative, what=f"cannot commit {relative} in {self}")
            text = message(old) if callable(message) else message
            self._git("commit", "--quiet", "--file=-", env=env, stdin=text, what=f"cannot commit {relative} in {self}")
            args, remote_env = self._remote_env()
            try:
                self._git(*args, "push", "--quiet", self.url, f"HEAD:refs/heads/{self.branch}",
                          what=f"cannot push to {self}", env=remote_env)
            except SourceError:
                if attempt + 1 == attempts:
                    raise
                continue
            return self.resolve("HEAD")
        return None
