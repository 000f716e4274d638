"""`pipeline run --bump ENV`: publish, then the same commit an automation rule would make, in a clone."""

from __future__ import annotations

import shutil
from pathlib import Path

from ruamel.yaml import YAML

from tests.controlplane import run_cli
from tests.projects import PROBE_APP

from .test_flow import git, project_files


def test_a_published_version_is_committed_into_the_named_environment(tmp_path: Path) -> None:
    store, source, project = tmp_path / "store", tmp_path / "src", tmp_path / "config"
    shutil.copytree(PROBE_APP, source)
    (source / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: app\ncommand: [python3, app.py]\n")
    project.mkdir()
    git(project, "init", "--quiet", "--initial-branch=main")
    for name, text in project_files(store, auto=False).items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    git(project, "add", "."), git(project, "commit", "--quiet", "-m", "project")
    result = run_cli("pipeline", "run", str(source), "--version", "2.0.0", "--store", str(store),
                     "--bump", "dev", "--project", str(project))
    assert "app 2.0.0 committed into dev" in result.stderr and "no upstream" in result.stderr
    subject = git(project, "log", "-1", "--format=%s%n%b")
    assert subject.startswith("dev: app 1.0.0 → 2.0.0") and "Digest: sha256:" in subject
    assert YAML(typ="safe").load((project / "environments/dev.yaml").read_text())["services"]["app"]["version"] \
        == "2.0.0"
    assert "1.0.0" in (project / "environments/prod.yaml").read_text()   # other environments are untouched
    wrong = run_cli("pipeline", "run", str(source), "--version", "2.0.1", "--store", str(store),
                    "--bump", "staging", "--project", str(project), check=False)
    assert wrong.returncode == 1 and "no environment 'staging'" in wrong.stderr
