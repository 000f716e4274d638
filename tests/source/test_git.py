"""Tests of the git source against real repositories: mirrors, history, snapshots and reverts."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from shipyard.source.errors import SourceError
from shipyard.source.git import Commit, LocalRepo, Mirror

from .conftest import Origin

JAN_1 = "2024-01-01T12:00:00+00:00"
JAN_2 = "2024-01-02T12:00:00+00:00"
JAN_3 = "2024-01-03T12:00:00+00:00"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def make_history(origin: Origin) -> list[str]:
    """Three commits on main, one per day; a tag v1 on the first."""
    first = origin.commit(
        "Add catalog\n\nThe first service.", {"services/catalog.yaml": "replicas: 1\n"}, JAN_1
    )
    origin.git("tag", "--annotate", "v1", "--message", "Release 1")
    second = origin.commit("Scale catalog", {"services/catalog.yaml": "replicas: 2\n"}, JAN_2)
    third = origin.commit("Add cart", {"services/cart.yaml": "replicas: 1\n"}, JAN_3)
    return [first, second, third]


@pytest.fixture
def history(origin: Origin) -> list[str]:
    return make_history(origin)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Mirror, list[str]]]:
    """One fetched mirror of `make_history` for the tests that only read."""
    with tempfile.TemporaryDirectory() as tmp:
        origin = Origin(Path(tmp) / "origin")
        history = make_history(origin)
        mirror = Mirror(Path(tmp) / "cache", origin.path)
        mirror.fetch("main")
        yield mirror, history


# --- fetch ------------------------------------------------------------------------------------------


def test_fetch_by_path_resolves_the_branch_to_a_full_commit(
    cache: Path, origin: Origin, history: list[str]
) -> None:
    mirror = Mirror(cache, origin.path)
    commit = mirror.fetch("v1")
    assert commit == Commit(
        sha=history[0],
        author="Ada Lovelace",
        email="ada@example.com",
        date=datetime(2024, 1, 1, 12, tzinfo=UTC),
        message="Add catalog",
        body="The first service.",
    )
    assert mirror.fetch("main").sha == history[2]
    assert mirror.path.parent == cache and (mirror.path / "HEAD").is_file()


def test_fetch_by_file_url_and_by_relative_path(
    cache: Path, origin: Origin, history: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Mirror(cache, f"file://{origin.path}").fetch("main").sha == history[2]
    monkeypatch.chdir(origin.path.parent)
    relative = Mirror(cache, "origin")
    assert relative.url == str(origin.path)
    assert relative.fetch("main").sha == history[2]


def test_new_commits_appear_after_a_fetch(cache: Path, origin: Origin, history: list[str]) -> None:
    mirror = Mirror(cache, origin.path)
    assert mirror.fetch("main").sha == history[2]
    newer = origin.commit(
        "Add orders", {"services/orders.yaml": "replicas: 1\n"}, "2024-01-04T12:00:00+00:00"
    )
    assert mirror.resolve("main").sha == history[2]  # reads never reach the remote
    assert mirror.fetch("main").sha == newer


def test_force_pushed_branch_moves_and_deleted_branch_is_pruned(
    cache: Path, origin: Origin, history: list[str]
) -> None:
    origin.git("branch", "feature", history[2])
    mirror = Mirror(cache, origin.path)
    mirror.fetch("main")
    origin.git("reset", "--hard", "--quiet", history[0])
    rewritten = origin.commit("Scale catalog to 3", {"services/catalog.yaml": "replicas: 3\n"}, JAN_3)
    origin.git("branch", "-D", "feature")
    assert mirror.fetch("main").sha == rewritten
    with pytest.raises(SourceError, match="'feature' is not a branch, tag or commit of"):
        mirror.fetch("feature")


def test_fetch_of_a_commit_sha_and_of_an_unknown_ref(cache: Path, origin: Origin, history: list[str]) -> None:
    mirror = Mirror(cache, origin.path)
    assert mirror.fetch(history[1]).sha == history[1]
    with pytest.raises(SourceError, match="'nope' is not a branch, tag or commit of /"):
        mirror.fetch("nope")
    with pytest.raises(SourceError, match="invalid revision '--upload-pack=x'"):
        mirror.fetch("--upload-pack=x")


@pytest.mark.parametrize(
    "url, message",
    [
        ("file:///nonexistent/repo", "cannot fetch file:///nonexistent/repo: repository not found"),
        ("/nonexistent/repo", "cannot fetch /nonexistent/repo: repository not found"),
        ("http://127.0.0.1:1/repo.git", "cannot fetch http://127.0.0.1:1/repo.git: connection refused"),
        (
            "https://user:s3cret@127.0.0.1:1/r.git",
            "cannot fetch https://\\*\\*\\*@127.0.0.1:1/r.git: connection refused",
        ),
    ],
)
def test_an_unreachable_repository_is_a_one_line_error(cache: Path, url: str, message: str) -> None:
    with pytest.raises(SourceError, match=f"^{message}$") as caught:
        Mirror(cache, url).fetch("main")
    assert "\n" not in str(caught.value) and "s3cret" not in str(caught.value)


def test_an_unsupported_url_scheme_is_refused(cache: Path) -> None:
    with pytest.raises(SourceError, match="unsupported repository URL ext::sh -c x"):
        Mirror(cache, "ext::sh -c x://")


def test_a_fetch_killed_midway_leaves_locks_that_the_next_fetch_clears(
    cache: Path, origin: Origin, history: list[str]
) -> None:
    mirror = Mirror(cache, origin.path)
    mirror.fetch("main")
    newer = origin.commit("Add orders", {"services/orders.yaml": "x\n"}, JAN_3)
    (mirror.path / "refs" / "heads" / "main.lock").write_text("")  # what a SIGKILLed fetch leaves
    (mirror.path / "packed-refs.lock").write_text("")
    assert mirror.fetch("main").sha == newer


def test_a_hanging_fetch_times_out_and_kills_git(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh = tmp_path / "hanging-ssh"
    ssh.write_text("#!/bin/sh\nexec sleep 30\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(ssh))
    mirror = Mirror(cache, "ssh://git.example/repo.git", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(
        SourceError, match=r"^cannot fetch ssh://git.example/repo.git: git fetch timed out after 0.5s$"
    ):
        mirror.fetch("main")
    assert time.monotonic() - started < 5
    sleeping = subprocess.run(["pgrep", "-f", str(ssh)], check=False, capture_output=True, text=True).stdout
    assert sleeping == ""


def test_concurrent_fetches_into_one_cache_do_not_corrupt_it(
    cache: Path, origin: Origin, history: list[str]
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:  # four at a time into a cache none has made yet
        futures = [pool.submit(lambda: Mirror(cache, origin.path).fetch("main").sha) for _ in range(12)]
    assert [future.result() for future in futures] == [history[2]] * 12
    mirror = Mirror(cache, origin.path)
    subprocess.run(
        ["git", "--git-dir", str(mirror.path), "fsck", "--strict"], check=True, capture_output=True
    )
    assert [p.name for p in cache.iterdir() if ".tmp-" in p.name] == []


# --- reading history --------------------------------------------------------------------------------


@pytest.fixture
def mirror(shared: tuple[Mirror, list[str]]) -> Mirror:
    return shared[0]


@pytest.fixture
def shared_history(shared: tuple[Mirror, list[str]]) -> list[str]:
    return shared[1]


@pytest.mark.parametrize("rev, index", [("main", 2), ("v1", 0), ("main~1", 1), ("HIST1", 1), ("SHORT0", 0)])
def test_resolve(mirror: Mirror, shared_history: list[str], rev: str, index: int) -> None:
    rev = rev.replace("HIST1", shared_history[1]).replace("SHORT0", shared_history[0][:8])
    assert mirror.resolve(rev).sha == shared_history[index]


def test_resolve_an_unknown_revision(mirror: Mirror) -> None:
    with pytest.raises(SourceError, match=r"^cannot resolve 'main~9' in /.*origin: bad revision 'main~9'$"):
        mirror.resolve("main~9")


def test_reading_a_mirror_before_any_fetch_is_an_error(
    cache: Path, origin: Origin, history: list[str]
) -> None:
    with pytest.raises(
        SourceError, match="the mirror of .*origin has not been fetched yet: fetch a ref first"
    ):
        Mirror(cache, origin.path).resolve("main")


def test_log_is_newest_first_and_limited(mirror: Mirror, shared_history: list[str]) -> None:
    assert [c.sha for c in mirror.log("main", limit=2)] == [shared_history[2], shared_history[1]]
    assert [c.message for c in mirror.log("main")] == ["Add cart", "Scale catalog", "Add catalog"]


@pytest.mark.parametrize(
    "when, index",
    [
        (datetime(2024, 1, 1, 12, tzinfo=UTC), 0),  # exactly the first commit's date
        (datetime(2024, 1, 2, 23, tzinfo=UTC), 1),
        (datetime(2024, 1, 3, 14, tzinfo=timezone(timedelta(hours=2))), 2),  # 12:00 UTC
        (datetime(2030, 1, 1, tzinfo=UTC), 2),
    ],
)
def test_commit_at(mirror: Mirror, shared_history: list[str], when: datetime, index: int) -> None:
    assert mirror.commit_at("main", when).sha == shared_history[index]


def test_commit_at_before_the_first_commit_is_an_error(mirror: Mirror) -> None:
    with pytest.raises(SourceError, match="no commit on 'main' in .* at or before 2023-12-31T00:00:00"):
        mirror.commit_at("main", datetime(2023, 12, 31, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        mirror.commit_at("main", datetime(2024, 1, 2))


def test_changed_paths(mirror: Mirror, shared_history: list[str]) -> None:
    assert mirror.changed_paths(shared_history[0], "main") == ["services/cart.yaml", "services/catalog.yaml"]
    assert mirror.changed_paths("main", "main") == []


# --- export -----------------------------------------------------------------------------------------


@pytest.fixture
def app_commit(origin: Origin) -> str:
    origin.write({"apps/catalog/run.sh": "#!/bin/sh\necho catalog\n", "apps/catalog/data/menu.txt": "tea\n"})
    (origin.path / "apps/catalog/run.sh").chmod(0o755)
    os.symlink("data/menu.txt", origin.path / "apps/catalog/menu")
    return origin.commit("Add the catalog app", {"shipyard.yaml": "name: shop\n"}, JAN_1)


def test_export_writes_files_exec_bits_and_symlinks(
    cache: Path, origin: Origin, app_commit: str, tmp_path: Path
) -> None:
    mirror = Mirror(cache, origin.path)
    mirror.fetch("main")
    dest = mirror.export(app_commit, None, tmp_path / "snap" / app_commit)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "apps", "apps/catalog", "apps/catalog/data", "apps/catalog/data/menu.txt",
        "apps/catalog/menu", "apps/catalog/run.sh", "shipyard.yaml",
    ]  # fmt: skip
    run = dest / "apps/catalog/run.sh"
    assert run.stat().st_mode & stat.S_IXUSR
    assert not (dest / "shipyard.yaml").stat().st_mode & stat.S_IXUSR
    assert os.readlink(dest / "apps/catalog/menu") == "data/menu.txt"
    assert (dest / "apps/catalog/menu").read_text() == "tea\n"
    assert sorted(p.name for p in dest.parent.iterdir()) == [f".{app_commit}.source", app_commit]


def test_export_of_a_subdir_and_reuse(cache: Path, origin: Origin, app_commit: str, tmp_path: Path) -> None:
    mirror = Mirror(cache, origin.path)
    mirror.fetch("main")
    dest = tmp_path / "snap" / "catalog"
    assert mirror.export(app_commit[:10], "apps/catalog/", dest) == dest
    assert sorted(p.name for p in dest.iterdir()) == ["data", "menu", "run.sh"]
    (dest / "run.sh").write_text("changed")  # reuse means no rewrite: the file stays as it is
    assert mirror.export(app_commit, "apps/catalog", dest) == dest
    assert (dest / "run.sh").read_text() == "changed"
    with pytest.raises(SourceError, match="it exists and is not a snapshot of"):
        mirror.export(app_commit, "apps", dest)


@pytest.mark.parametrize(
    "subdir, message",
    [
        ("apps/orders", "no directory 'apps/orders' at commit"),
        ("shipyard.yaml", "'shipyard.yaml' at commit .* is a file, not a directory"),
        ("../etc", "invalid subdirectory '../etc'"),
    ],
)
def test_export_of_a_missing_subdir_is_an_error(
    cache: Path, origin: Origin, app_commit: str, tmp_path: Path, subdir: str, message: str
) -> None:
    mirror = Mirror(cache, origin.path)
    mirror.fetch("main")
    with pytest.raises(SourceError, match=message):
        mirror.export(app_commit, subdir, tmp_path / "snap")
    assert not (tmp_path / "snap").exists()


# --- local repositories and reverts -----------------------------------------------------------------


def test_is_writable_local(origin: Origin, history: list[str], tmp_path: Path, cache: Path) -> None:
    mirror = Mirror(cache, origin.path)
    mirror.fetch("main")
    assert LocalRepo(origin.path).is_writable_local()
    assert not LocalRepo(mirror.path).is_writable_local()
    assert not LocalRepo(tmp_path / "missing").is_writable_local()


def test_revert_commits_the_inverse_on_the_followed_branch(origin: Origin, history: list[str]) -> None:
    repo = LocalRepo(origin.path, "main")
    revert = repo.revert(history[1])
    assert revert.message == 'Revert "Scale catalog"'
    assert revert.body == f"This reverts commit {history[1]}."
    assert revert.email == "ada@example.com"
    assert (origin.path / "services/catalog.yaml").read_text() == "replicas: 1\n"
    assert (origin.path / "services/cart.yaml").exists()
    assert origin.git("rev-parse", "HEAD~1") == history[2]


def test_revert_with_a_message_and_no_configured_identity(origin: Origin, history: list[str]) -> None:
    origin.git("config", "--unset", "user.name")
    origin.git("config", "--unset", "user.email")
    revert = LocalRepo(origin.path).revert(history[2], "Roll back: cart failed its canary")
    assert (revert.message, revert.author, revert.email) == (
        "Roll back: cart failed its canary", "Shipyard", "shipyard@localhost",
    )  # fmt: skip
    assert revert.body == f"This reverts commit {history[2]}."
    assert not (origin.path / "services/cart.yaml").exists()


def test_revert_refuses_a_dirty_tree_and_another_branch(origin: Origin, history: list[str]) -> None:
    origin.write({"services/catalog.yaml": "replicas: 9\n"})
    with pytest.raises(SourceError, match=r"uncommitted changes \(1 files, e.g. services/catalog.yaml\)"):
        LocalRepo(origin.path, "main").revert(history[1])
    origin.git("checkout", "--quiet", "--", ".")
    (origin.path / "notes.txt").write_text("untracked files do not block a revert")
    origin.git("switch", "--quiet", "-c", "feature")
    with pytest.raises(SourceError, match="'feature' is checked out, but Shipyard follows 'main'"):
        LocalRepo(origin.path, "refs/heads/main").revert(history[1])
    origin.git("switch", "--quiet", "--detach", "main")
    with pytest.raises(SourceError, match="HEAD is detached; check out main first"):
        LocalRepo(origin.path, "main").revert(history[1])
    assert origin.git("rev-parse", "HEAD") == history[2]


def test_a_conflicting_revert_is_aborted(origin: Origin, history: list[str]) -> None:
    origin.commit("Scale catalog again", {"services/catalog.yaml": "replicas: 5\n"}, JAN_3)
    head = origin.git("rev-parse", "HEAD")
    with pytest.raises(
        SourceError, match="conflict in services/catalog.yaml; nothing was changed, revert by hand: cd "
    ):
        LocalRepo(origin.path).revert(history[1])
    assert origin.git("rev-parse", "HEAD") == head
    assert origin.git("status", "--porcelain") == ""


def test_reverting_what_is_already_undone_is_an_error(origin: Origin, history: list[str]) -> None:
    origin.commit("Scale catalog back", {"services/catalog.yaml": "replicas: 1\n"}, JAN_3)
    for message in (None, "Roll back"):
        with pytest.raises(SourceError, match="nothing to commit: the changes are already undone"):
            LocalRepo(origin.path).revert(history[1], message)
        assert origin.git("status", "--porcelain") == ""


def test_revert_of_a_merge_undoes_the_merged_branch(origin: Origin, history: list[str]) -> None:
    origin.git("switch", "--quiet", "-c", "feature", history[0])
    origin.commit("Add orders", {"services/orders.yaml": "replicas: 1\n"}, JAN_2)
    origin.git("switch", "--quiet", "main")
    origin.git("merge", "--quiet", "--no-ff", "-m", "Merge feature", "feature", date=JAN_3)
    merge = origin.git("rev-parse", "HEAD")
    repo = LocalRepo(origin.path)
    assert repo.revert_commands(merge)[-1] == f"git revert --no-edit -m 1 {merge}"
    repo.revert(merge)
    assert not (origin.path / "services/orders.yaml").exists()
    assert (origin.path / "services/cart.yaml").exists()


def test_revert_commands(origin: Origin, history: list[str]) -> None:
    assert LocalRepo(origin.path, "main").revert_commands(history[1][:7]) == [
        f"cd {origin.path}",
        "git switch main",
        f"git revert --no-edit {history[1]}",
    ]
