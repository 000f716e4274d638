"""Git credentials: a token reaches git through its credential mechanism, never argv, the store or disk in clear
outside a 0600 file (a real git, a real smart-HTTP server with Basic auth)."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from shipyard.source.credentials import split_credentials
from shipyard.source.errors import SourceError
from shipyard.source.git import Mirror
from tests.source.conftest import Origin
from tests.source.http_git import serving_git

TOKEN = "ghp_s3cretT0kenThatMustNotLeak"


@pytest.mark.parametrize(("url", "expected"), [
    ("https://alice:tok@git.example.com/shop.git", ("https://alice@git.example.com/shop.git", "tok")),
    ("https://:tok@git.example.com/shop.git", ("https://git.example.com/shop.git", "tok")),
    ("https://alice:p%40ss@host/r.git", ("https://alice@host/r.git", "p@ss")),
    ("https://alice@host/r.git", ("https://alice@host/r.git", None)),
    ("ssh://git@host/r.git", ("ssh://git@host/r.git", None)),
    ("/srv/git/shop", ("/srv/git/shop", None)),
])
def test_split_credentials(url, expected):
    assert split_credentials(url) == expected


class ArgvWatcher:
    """Reads every process's command line, as often as it can, while a fetch runs."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        self.seen.add((entry / "cmdline").read_bytes())
                    except OSError:
                        pass

    def __enter__(self) -> "ArgvWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def served(tmp_path: Path):
    origin = Origin(tmp_path / "repos" / "shop")
    sha = origin.commit("first", {"shipyard.yaml": "name: shop\n"}, "2024-01-01T12:00:00+00:00")
    with serving_git(tmp_path / "repos", "alice", TOKEN, delay=0.3) as base:
        yield base, sha


def test_a_token_in_the_url_reaches_git_by_its_credential_helper_only(served, tmp_path):
    base, sha = served
    url = base.replace("http://", f"http://alice:{TOKEN}@") + "/shop/.git"
    with ArgvWatcher() as watcher:
        mirror = Mirror(tmp_path / "cache", url)
        assert mirror.fetch("main").sha == sha
    fetches = [argv for argv in watcher.seen if b"fetch" in argv and base.removeprefix("http://").encode() in argv]
    assert fetches, "the watcher saw no git fetch: it proves nothing"
    assert not [argv for argv in watcher.seen if TOKEN.encode() in argv]
    assert TOKEN not in mirror.url and TOKEN not in str(mirror)
    kept = tmp_path / "cache" / "credentials"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file() and path != kept:
            assert TOKEN.encode() not in path.read_bytes(), path  # no `store` helper, no config, no log


def test_the_token_can_come_from_the_environment_and_a_wrong_one_fails_cleanly(served, tmp_path, monkeypatch):
    base, sha = served
    url = base + "/shop/.git"
    with pytest.raises(SourceError, match="authentication failed") as failure:
        Mirror(tmp_path / "none", url).fetch("main")
    assert TOKEN not in str(failure.value)
    monkeypatch.setenv("SHIPYARD_GIT_TOKEN", "wrong")
    with pytest.raises(SourceError, match="authentication failed"):
        Mirror(tmp_path / "wrong", url.replace("http://", "http://alice@")).fetch("main")
    monkeypatch.setenv("SHIPYARD_GIT_TOKEN", TOKEN)
    assert Mirror(tmp_path / "env", url.replace("http://", "http://alice@")).fetch("main").sha == sha
