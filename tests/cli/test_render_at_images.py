"""`render --at` reproduces the digests a past revision ran, even after its version was published again."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.artifacts.sources import source  # noqa: F401 - the fixture
from tests.controlplane import run_cli
from tests.projects import probe_service, write_project


def backdate(log: Path, hours: float) -> None:
    """Move every publication recorded so far HOURS into the past (instead of waiting between publications)."""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for record in records:
        record["at"] = (datetime.fromisoformat(record["at"]) - timedelta(hours=hours)).isoformat()
    log.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_render_at_a_past_commit_names_the_digest_its_version_had_then(source: Path, tmp_path: Path) -> None:  # noqa: F811
    store = tmp_path / "store"
    env = {"SHIPYARD_STORE": str(store)}
    first = run_cli("build", str(source), "--version", "1.0.0", env=env).stdout.strip().split("@")[1]
    backdate(store / "hello" / "tags.jsonl", hours=2)

    project = tmp_path / "project"
    write_project(project, [probe_service("hello", artifact={"image": "hello"})])
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "hello 1.0.0"], check=True,
                   env={"GIT_COMMITTER_DATE": an_hour_ago, "GIT_AUTHOR_DATE": an_hour_ago,
                        "PATH": "/usr/bin:/bin"})

    (source / "app.py").write_text((source / "app.py").read_text() + "\n# changed after the commit\n")
    moved = run_cli("build", str(source), "--version", "1.0.0", env=env)   # the tag moves
    second = moved.stdout.strip().split("@")[1]
    assert second != first and "moved" in moved.stderr

    def digest(*args: str) -> str:
        rendered = json.loads(run_cli("render", str(project), "--env", "dev", "-o", "json", *args, env=env).stdout)
        return rendered["services"]["hello"]["artifact"]["digest"]

    assert digest() == second                              # the directory as it is: the tag now
    assert digest("--at", "main") == first                 # the commit: as it was when it landed
    assert digest("--at", (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()) == first
    assert digest("--at", (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()) == second
