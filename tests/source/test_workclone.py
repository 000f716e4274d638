"""A control plane's working clone: commits an edit on the remote branch's head and pushes it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shipyard.source.git import WorkClone


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}).stdout


def test_an_edit_is_committed_on_the_latest_head_and_pushed(tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--bare", "--quiet", "--initial-branch=main", str(origin))
    work = tmp_path / "person"
    git(tmp_path, "clone", "--quiet", str(origin), str(work))
    (work / "env.yaml").write_text("services:\n  a:\n    version: \"1\"\n")
    git(work, "add", "."), git(work, "commit", "--quiet", "-m", "first"), git(work, "push", "--quiet", "origin", "HEAD:main")
    clone = WorkClone(tmp_path / "cache", origin, "main")
    commit = clone.change("env.yaml", lambda text: text.replace('"1"', '"2"'), "bump a to 2\n")
    assert commit is not None
    # someone else commits meanwhile: the next change lands on top of it, not over it
    git(work, "pull", "--quiet", "origin", "main")
    (work / "other.txt").write_text("x")
    git(work, "add", "."), git(work, "commit", "--quiet", "-m", "other"), git(work, "push", "--quiet", "origin", "HEAD:main")
    assert clone.change("env.yaml", lambda text: text.replace('"2"', '"3"'), "bump a to 3\n") is not None
    assert clone.change("env.yaml", lambda text: text, "nothing\n") is None
    log = git(tmp_path, "--git-dir", str(origin), "log", "--format=%s", "main")
    assert log.split("\n")[:3] == ["bump a to 3", "other", "bump a to 2"]
    shown = git(tmp_path, "--git-dir", str(origin), "show", "main:env.yaml")
    assert 'version: "3"' in shown
