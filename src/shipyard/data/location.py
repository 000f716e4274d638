"""Where an environment's database server keeps its files, and which user runs it.

The data directory lives in the state dir (`<state dir>/database/<engine>/`), so an environment's data
goes where its state goes (and with it when the state dir is removed). Who runs the server:

- A control plane run by an ordinary user runs the server as that same user: nothing else to open.
- A control plane run by root runs PostgreSQL as the `postgres` user (the server refuses root), Redis
  as `redis`. That user must traverse the 0700 state dir, so the state dir and `<state dir>/database` get the `postgres`
  group and mode 0710: members of that group (normally the `postgres` user alone) may pass through
  them to a name they know, but not list them; every other user is still kept out. The data directory
  itself is 0700 and owned by `postgres`. What the control plane writes is 0600 (umask 077), so the
  `postgres` user can open nothing of the control plane's on the way (not the age key, not the
  passwords under `database/passwords/`, which stay root's, 0700). `secure_state_dir` closes the state
  dir again at each start; `grant_traversal` reopens it before any command is run as `postgres`.
- When root's state dir sits under a directory the `postgres` user cannot traverse (`/root`, a 0700
  pytest base), opening that ancestor would expose far more; the data then lives in
  `/var/lib/shipyard/<engine>/<hash of the state dir>/` instead, and `<state dir>/database/server`
  (`redis-server` for Redis) points there (the layout of earlier versions, which keeps working as it is: an existing link is
  followed, its data is never moved).

Redis as root needs none of this: it is started in its directory and never walks the path
(`prepare(..., traverse=False)`, see `shipyard.data.redis`); PostgreSQL cannot be, as it resolves its
data directory to an absolute path and `pg_ctl` must find it again.

The Unix socket (the superuser's way in) goes to a short private directory under `/run` (root) or
`$XDG_RUNTIME_DIR`/the temp dir: a socket path must stay under 108 bytes, which a state dir's may not.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import pwd
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shipyard.data.errors import DatabaseError

SERVER_USERS = {"postgres": "postgres", "redis": "redis"}  # as root: the unprivileged user of Debian's package
LEGACY_ROOT = Path("/var/lib/shipyard")


@dataclass(frozen=True)
class ServerLocation:
    """The directories of one environment's server of one engine, and the OS user it runs as."""

    engine: str
    state: Path           # <state dir>/database: ports and passwords (the control plane's alone)
    root: Path            # the server's own files: data/, its log
    socket_dir: Path
    user: str             # the OS user the server runs as (also its superuser's name, for peer auth)
    as_root: bool         # the control plane is root: commands run as `user` through runuser
    linked: bool          # root lives outside the state dir (`database/server` points to it)

    @property
    def state_dir(self) -> Path:
        return self.state.parent

    @property
    def link(self) -> Path:
        return self.state / ("server" if self.engine == "postgres" else f"{self.engine}-server")


def locate(state_dir: Path, engine: str = "postgres") -> ServerLocation:
    """Where STATE_DIR's server lives: a link already there wins; else the state dir (decided at init)."""
    state = state_dir.resolve() / "database"
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    as_root = os.geteuid() == 0
    user = SERVER_USERS[engine] if as_root else _current_user()
    if as_root:
        socket_dir = Path("/run/shipyard") / f"{engine}-{digest}"
    else:
        socket_dir = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"shipyard-{engine}-{digest}"
    location = ServerLocation(engine, state, state / engine, socket_dir, user, as_root, linked=False)
    if location.link.is_symlink():
        root = Path(os.readlink(location.link))
        return ServerLocation(engine, state, root, root / "socket", user, as_root, linked=True)
    return location


def prepare(location: ServerLocation, traverse: bool = True) -> ServerLocation:
    """Create the server's directories on first use; root: in the state dir if `postgres` can reach it.

    TRAVERSE=False: the server never needs the path (it is started in its directory, see `redis`).
    """
    location.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    if location.linked or not location.as_root or not traverse:
        make_own(location.root, location)
        return location
    grant_traversal(location)
    make_own(location.root, location)
    if _can_enter(location):
        return location
    # An ancestor of the state dir keeps `postgres` out: close the state dir again and live in /var/lib.
    os.rmdir(location.root)
    for directory in (location.state, location.state_dir):
        os.chown(directory, -1, 0)
        os.chmod(directory, 0o700)
    digest = hashlib.sha256(str(location.state_dir).encode()).hexdigest()[:16]
    root = LEGACY_ROOT / location.engine / digest
    root.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    moved = ServerLocation(location.engine, location.state, root, root / "socket", location.user, True, linked=True)
    make_own(root, moved)
    location.link.symlink_to(root)
    return moved


def grant_traversal(location: ServerLocation) -> None:
    """Root + data in the state dir: the server's group may pass through the state dir (0710), no more."""
    if not location.as_root or location.linked:
        return
    gid = _account(location.user).pw_gid
    for directory in (location.state_dir, location.state):
        info = directory.stat()
        if info.st_gid != gid:
            os.chown(directory, -1, gid)
        if info.st_mode & 0o777 != 0o710:
            os.chmod(directory, 0o710)


def ensure_socket_dir(location: ServerLocation) -> None:
    """The socket's directory (under /run it is gone after a reboot), private to the server's user."""
    location.socket_dir.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    make_own(location.socket_dir, location)


def as_user(location: ServerLocation, argv: list[str]) -> list[str]:
    return ["runuser", "-u", location.user, "--", *argv] if location.as_root else argv


def make_own(directory: Path, location: ServerLocation) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if location.as_root:
        account = _account(location.user)
        os.chown(directory, account.pw_uid, account.pw_gid)


def _can_enter(location: ServerLocation) -> bool:
    """Ask the kernel, not a model of it: can the server's user write in its root?"""
    check = subprocess.run(as_user(location, ["test", "-w", str(location.root)]), capture_output=True, timeout=30,
                           cwd="/")
    return check.returncode == 0


def _account(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise DatabaseError(f"no `{user}` user: install Debian's {'postgresql' if user == 'postgres' else 'redis-server'} "
                            "(scripts/system-deps.sh)") from None


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return getpass.getuser()
