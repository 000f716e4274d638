"""An image's User resolved against its own passwd and group files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.artifacts.errors import ArtifactError
from shipyard.artifacts.imageuser import image_user, parse_user

PASSWD = "root:x:0:0:root:/root:/bin/sh\n# a comment\nwww:x:101:102::/www:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
GROUP = "root:x:0:\nweb:x:102:\nstaff:x:50:www\n"


@pytest.mark.parametrize(("user", "expected"), [
    ("www", (101, 102)),            # a name: uid and primary group from passwd
    ("www:staff", (101, 50)),       # name:group
    ("www:7", (101, 7)),            # name:gid
    ("101", (101, 102)),            # a uid that passwd knows: its primary group
    ("4242", (4242, 0)),            # a uid passwd does not know: gid 0, as runc does
    ("4242:9", (4242, 9)),
    ("nobody", (65534, 65534)),
])
def test_users_resolve_like_container_engines(user: str, expected: tuple[int, int]) -> None:
    assert parse_user(user, PASSWD, GROUP) == expected


@pytest.mark.parametrize(("user", "message"), [
    ("ghost", "no user 'ghost' in its /etc/passwd"),
    ("www:ghosts", "no group 'ghosts' in its /etc/group"),
])
def test_unknown_names_are_refused_with_the_name(user: str, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        parse_user(user, PASSWD, GROUP)


def test_the_files_come_from_the_images_root_never_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    assert image_user("www", tmp_path) == "101:102"
    assert image_user("", tmp_path) == ""
    (tmp_path / "etc/passwd").unlink()
    (tmp_path / "etc/passwd").symlink_to("/etc/passwd")   # the host's: not read
    with pytest.raises(ArtifactError):
        image_user("root", tmp_path)
