"""One Redis server per environment (Debian's `redis-server`), an ACL user per service.

The server's files are in `<state dir>/database/redis/data/` (0700, owned by the user it runs as:
`redis` when the control plane is root, else the control plane's own user). It is started *in* that
directory (`dir .`; the process changes user after changing directory), so as root it never needs a
path through the 0700 state dir: nothing of the state dir is opened for it. It listens on 127.0.0.1 only,
in protected mode, is detached (`setsid --fork`) so it outlives the control plane, and is re-adopted
by the next one through its pid file. Writes go to the append-only file with `appendfsync always`:
a write Redis acknowledged survives a crash of Redis, as a committed row does in PostgreSQL.

Isolation is Redis's ACL, written whole to `users.acl` (as `pg_hba.conf` is): the `default` user is off,
each service has a user named after it (`-` becomes `_`) that may touch only keys and channels under
its databases' prefixes (`~cache:*`, `&cache:*` for `{name: cache}`) and no admin or dangerous command
(KEYS, FLUSHALL, CONFIG…). The file holds SHA-256 hashes only; the passwords (192 bits, generated) are
kept 0600 in `<state dir>/database/redis-passwords/`, which the server's user cannot enter. The running
server gets the same users by ACL SETUSER (ACL LOAD would cut every client's connection). Shipyard
manages the server as its own `shipyard` ACL user: `redis-cli` with the password in REDISCLI_AUTH (never
argv) for PING and SHUTDOWN, the `redis` client library for the rest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from shipyard.data import credentials
from shipyard.data import location as locations
from shipyard.data.errors import DatabaseError
from shipyard.runtime import procfs
from shipyard.data.postgres import Grant
from shipyard.proxy.ports import free_port

ADMIN = "shipyard"
START_TIMEOUT_S = 30.0


def key_prefix(database: str) -> str:
    """What a service's keys in database DATABASE start with (its ACL allows no other key)."""
    return f"{database}:"


class RedisServer:
    """The environment's Redis: created on first use, started if down, told who may touch which keys."""

    def __init__(self, state_dir: Path) -> None:
        self.location = locations.locate(state_dir, "redis")
        self.state = self.location.state
        self.data = self.location.root / "data"
        self.passwords = self.state / "redis-passwords"

    # ---- lifecycle ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        try:
            return int((self.state / "redis-port").read_text())
        except (OSError, ValueError):
            raise DatabaseError(f"no Redis server for {self.state.parent}: apply a project with a redis database first") from None

    def exists(self) -> bool:
        return (self.data / "users.acl").exists()

    def alive(self) -> bool:
        """Cheap (file reads, no subprocess): the pid file's process is a live redis-server."""
        try:
            pid = int((self.data / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return False
        stat = procfs.read_stat(pid)
        return stat is not None and stat.state not in ("Z", "X") and "redis-server" in stat.name

    def ensure_running(self) -> None:
        """Initialise on first use; start (detached) when down; wait until it answers its admin user."""
        if not self.exists():
            self._init()
        if self.alive():
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise DatabaseError("Redis is not installed: run scripts/system-deps.sh (apt-get install redis-server)")
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes",
                "--dir", ".", "--aclfile", "users.acl", "--pidfile", "redis.pid", "--logfile", "redis.log",
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]
        setsid = shutil.which("setsid")
        user = {"user": self.location.user, "group": self._account().pw_gid, "extra_groups": []} \
            if self.location.as_root else {}
        # the new process changes directory first and user second: as `redis` it never walks the state dir
        subprocess.run([setsid, "--fork", *argv] if setsid else argv, cwd=self.data, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
                       start_new_session=True, timeout=30, check=False, **user)  # type: ignore[call-overload]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.admin("PING", check=False).strip() == "PONG":
                return
            time.sleep(0.05)
        tail = (self.data / "redis.log").read_text(errors="replace").strip().splitlines()[-3:] \
            if (self.data / "redis.log").exists() else []
        raise DatabaseError(f"Redis did not start in {self.data}: {' | '.join(tail) or 'no log'}")

    def stop(self) -> None:
        """SHUTDOWN: the append-only file is flushed, then the server exits."""
        if self.alive():
            pid = int((self.data / "redis.pid").read_text().strip())
            self.admin("SHUTDOWN", check=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and self.alive():
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL (tests: a crash)."""
        if self.alive():
            os.kill(int((self.data / "redis.pid").read_text().strip()), 9)

    def remove(self) -> None:
        """Stop the server and delete its data (tests)."""
        self.stop()
        self.kill()
        shutil.rmtree(self.location.root, ignore_errors=True)
        shutil.rmtree(self.passwords, ignore_errors=True)

    def _init(self) -> None:
        self.location = locations.prepare(self.location, traverse=False)
        self.data = self.location.root / "data"
        locations.make_own(self.data, self.location)
        self.passwords.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (self.state / "redis-port").exists():
            (self.state / "redis-port").write_text(str(free_port()))
        self._write_acl([])

    def _account(self):  # noqa: ANN202 - pwd.struct_passwd
        import pwd
        return pwd.getpwnam(self.location.user)

    # ---- users -------------------------------------------------------------------------------------
    def admin(self, *command: str, check: bool = True) -> str:
        """A command as the `shipyard` user (redis-cli; the password in REDISCLI_AUTH, never argv)."""
        env = {"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": self.password(ADMIN, create=True)}
        try:
            result = subprocess.run(["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(self.port),
                                     "--user", ADMIN, *command], capture_output=True, text=True, env=env, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatabaseError(f"redis-cli failed: {exc}") from None
        failed = result.returncode != 0 or result.stdout.startswith(("ERR", "NOPERM", "WRONGPASS", "NOAUTH"))
        if check and failed:
            raise DatabaseError(f"redis-cli {command[0]} failed: {(result.stderr or result.stdout).strip()[-300:]}")
        return result.stdout

    def ensure(self, grants: list[Grant]) -> None:
        """Every service of GRANTS has its user, limited to its databases' key prefixes."""
        self.ensure_running()
        for grant in grants:
            self.password(grant.role, create=True)
        self._apply(self._write_acl(grants))

    def rotate(self, role: str) -> None:
        """A new password for ROLE; connections already authenticated keep working."""
        credentials.forget(self.passwords, role, "Redis user")
        self.password(role, create=True)
        self._apply(self._write_acl(self._granted()))

    def password(self, role: str, create: bool = False) -> str:
        return credentials.password(self.passwords, role, create, "Redis user")

    def url(self, grant: Grant) -> str:
        return f"redis://{grant.role}:{self.password(grant.role)}@127.0.0.1:{self.port}/0"

    def backup(self, database: str, output: Path) -> int:
        """Write the keys of DATABASE (its prefix) to OUTPUT, one JSON line each (DUMP payload, TTL); the count."""
        client, count = self._client(), 0
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            for key in client.scan_iter(match=_escape(key_prefix(database)) + "*", count=500):
                payload, ttl = client.dump(key), client.pttl(key)
                if payload is None:  # expired between SCAN and DUMP
                    continue
                handle.write(json.dumps({"key": _b64(key), "ttl": max(ttl, 0), "value": _b64(payload)}) + "\n")
                count += 1
        return count

    def restore(self, database: str, source: Path) -> int:
        """Restore the keys of a `backup` file (replacing those it holds); a key outside DATABASE is refused."""
        entries = []
        for number, line in enumerate(source.read_text().splitlines(), 1):
            try:
                entry = json.loads(line)
                key, payload = base64.b64decode(entry["key"]), base64.b64decode(entry["value"])
                ttl = int(entry["ttl"])
            except (ValueError, KeyError, TypeError):
                raise DatabaseError(f"{source}:{number}: not a line of `shipyard db backup` (Redis)") from None
            if not key.startswith(key_prefix(database).encode()):
                raise DatabaseError(f"{source}:{number}: key outside database {database!r}; nothing restored")
            entries.append((key, ttl, payload))
        pipeline = self._client().pipeline(transaction=True)
        for key, ttl, payload in entries:
            pipeline.restore(key, ttl, payload, replace=True)
        pipeline.execute()
        return len(entries)

    def _client(self):  # noqa: ANN202 - redis.Redis
        import redis  # only `db backup|restore` need the client library

        return redis.Redis(host="127.0.0.1", port=self.port, username=ADMIN, password=self.password(ADMIN),
                           socket_timeout=30)

    def _granted(self) -> list[Grant]:
        """The grants the ACL file holds now (for a rotation between two applies)."""
        grants = []
        for line in (self.data / "users.acl").read_text().splitlines():
            words = line.split()
            if len(words) > 2 and words[0] == "user" and words[1] not in (ADMIN, "default"):
                grants += [Grant(words[1], w[1:-len(":*")], "") for w in words if w.startswith("~")]
        return grants

    def _write_acl(self, grants: list[Grant]) -> dict[str, list[str]]:
        """Write `users.acl` whole (what a restarted server loads); returns each service user's rules."""
        prefixes: dict[str, list[str]] = {}
        for grant in grants:
            prefixes.setdefault(grant.role, []).append(key_prefix(grant.database))
        users = {role: ["on", f"#{_sha256(self.password(role))}", "resetchannels",
                        *[f"{sigil}{p}*" for p in dict.fromkeys(found) for sigil in "~&"], "+@all", "-@admin",
                        "-@dangerous"] for role, found in sorted(prefixes.items())}
        lines = ["user default off resetkeys resetchannels -@all",
                 f"user {ADMIN} on #{_sha256(self.password(ADMIN, create=True))} ~* &* +@all"]
        lines += [f"user {role} {' '.join(rules)}" for role, rules in users.items()]
        path = self.data / "users.acl"
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        if self.location.as_root:
            account = self._account()
            os.chown(temporary, account.pw_uid, account.pw_gid)
        os.replace(temporary, path)
        return users

    def _apply(self, users: dict[str, list[str]]) -> None:
        """The running server's users become USERS, one ACL SETUSER each, the hashes over the socket (not
        argv). Not ACL LOAD: Redis 7 disconnects every client of every user on a reload, which would fail
        services' requests at each apply; SETUSER keeps authenticated connections (as PostgreSQL does)."""
        client = self._client()
        for name in {n.decode() if isinstance(n, bytes) else n for n in client.acl_users()} - set(users) - {ADMIN, "default"}:
            client.acl_deluser(name)  # a service that no longer has a Redis database
        for name, rules in users.items():
            client.execute_command("ACL", "SETUSER", name, "reset", *rules)


def _b64(data: bytes) -> str:
    return base64.standard_b64encode(data).decode()


def _escape(prefix: str) -> str:
    """A key prefix as a literal in a SCAN MATCH glob."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()
