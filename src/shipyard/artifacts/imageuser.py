"""An image config's `User` (`name`, `uid`, `name:group`, `uid:gid`) → numeric uid and gid, read from the
image's own /etc/passwd and /etc/group, as container engines do. Hand-written: the stdlib `pwd`/`grp`
modules read the host's databases only, and the format is a few colon-separated fields."""

from __future__ import annotations

from pathlib import Path

from shipyard.artifacts.errors import ArtifactError


def _entries(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#") and ":" in line]


def parse_user(user: str, passwd: str, group: str) -> tuple[int, int]:
    """UID and GID for USER given the image's passwd and group files (their text; empty when absent)."""
    name, _, group_name = user.partition(":")
    users = {e[0]: e for e in _entries(passwd) if len(e) >= 4}
    if name.isdigit():
        uid = int(name)
        # a uid the image does not know runs with gid 0, as runc (Docker, Podman, Kubernetes) does
        primary = next((int(e[3]) for e in users.values() if e[2] == name and e[3].isdigit()), 0)
    elif name in users and users[name][2].isdigit() and users[name][3].isdigit():
        uid, primary = int(users[name][2]), int(users[name][3])
    else:
        raise ArtifactError(f"the image's User {user!r}: no user {name!r} in its /etc/passwd")
    if not group_name:
        return uid, primary
    if group_name.isdigit():
        return uid, int(group_name)
    groups = {e[0]: e for e in _entries(group) if len(e) >= 3 and e[2].isdigit()}
    if group_name not in groups:
        raise ArtifactError(f"the image's User {user!r}: no group {group_name!r} in its /etc/group")
    return uid, int(groups[group_name][2])


def image_user(user: str, root: Path) -> str:
    """`uid:gid` for the image config's USER in the unpacked ROOT; "" when the image names none (root)."""
    if not user.strip():
        return ""

    def read(relative: str) -> str:
        path = root / relative
        if path.is_symlink() or not path.is_file():   # never follow a link out of the image
            return ""
        return path.read_text(encoding="utf-8", errors="replace")

    uid, gid = parse_user(user.strip(), read("etc/passwd"), read("etc/group"))
    return f"{uid}:{gid}"
