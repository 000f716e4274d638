"""The small rules of reading a history: dates, the cache dir, what is a URL, where the project is."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shipyard.preview.revisions import History, cache_dir, is_url, parse_date
from shipyard.source.errors import SourceError


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ("2024-05-01 12:00+0200", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00.5Z", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)),
    ("main", None), ("3f2a9c1d", None), ("v2024.05.01", None), ("HEAD~2", None), ("20240501", None),
])  # fmt: skip
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_a_date_without_a_zone_is_local_time():
    when = parse_date("2024-05-01")
    assert when is not None and when.tzinfo is not None
    assert when.replace(tzinfo=None) == datetime(2024, 5, 1) and when.utcoffset() == datetime(2024, 5, 1).astimezone().utcoffset()


def test_an_impossible_date_is_an_error():
    with pytest.raises(SourceError, match="invalid date '2024-02-30'"):
        parse_date("2024-02-30")


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIPYARD_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "git"
    monkeypatch.delenv("SHIPYARD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "shipyard" / "git"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "shipyard" / "git"


@pytest.mark.parametrize(("source", "url"), [
    ("https://github.com/acme/shop.git", True), ("file:///srv/shop", True), ("git@github.com:acme/shop.git", True),
    (".", False), ("examples/shop", False), ("/srv/shop", False),
])  # fmt: skip
def test_is_url(source, url):
    assert is_url(source) is url


def test_a_directory_outside_git_is_refused_with_advice(tmp_path):
    with pytest.raises(SourceError, match="is not in a git repository: give a directory of a working tree"):
        History.open(str(tmp_path))
    with pytest.raises(SourceError, match="no such directory"):
        History.open(str(tmp_path / "missing"))


@pytest.mark.parametrize("path", ["..", "../elsewhere", "a/../../b"])
def test_path_may_not_leave_the_repository(tmp_path, path):
    (tmp_path / ".git").mkdir()
    with pytest.raises(SourceError, match="leads out of the repository"):
        History.open(str(tmp_path), path=path)


def test_the_project_directory_is_found_from_a_path_inside_the_work_tree(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/trunk\n")
    (tmp_path / "deploy" / "shop").mkdir(parents=True)
    history = History.open(str(tmp_path / "deploy"), path="shop")
    assert (history.subdir, history.ref) == ("deploy/shop", "trunk")
    assert History.open(str(tmp_path / "deploy" / "shop"), ref="main").ref == "main"
    (tmp_path / ".git" / "HEAD").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert History.open(str(tmp_path)).ref == "HEAD"  # detached
