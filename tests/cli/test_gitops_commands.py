"""`shipyard plan` and `shipyard render --at` against real git repositories made in tmp_path."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.cli.main import main
from shipyard.spec.render import render
from tests.shop import use_paths

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"
PROBLEM_LINE = re.compile(r"^[\w./-]+\.yaml:\d+:\d+: error: ")


class Repo:
    """A working tree on branch main; each commit at a fixed date, so `--at DATE` is predictable."""

    def __init__(self, path: Path, project: str = "") -> None:
        self.path = path
        self.project = path / project
        shutil.copytree(EXAMPLE, self.project, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
        use_paths(self.project)  # plans of code changes: the services run their directories (the inner loop)
        self.git("init", "--quiet", "--initial-branch=main")
        self.shas: dict[str, str] = {}

    def git(self, *args: str, date: str = "2024-01-01T12:00:00+00:00") -> str:
        env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date,
               "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
               "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
        return subprocess.run(["git", *args], cwd=self.path, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    def edit(self, file: str, old: str, new: str) -> None:
        path = self.project / file
        text = path.read_text()
        assert text.count(old) == 1, f"{file}: expected {old!r} once; has the example changed?"
        path.write_text(text.replace(old, new))

    def write(self, file: str, text: str) -> None:
        (self.project / file).parent.mkdir(parents=True, exist_ok=True)
        (self.project / file).write_text(text)

    def commit(self, name: str, date: str) -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", name, date=date)
        self.shas[name] = self.git("rev-parse", "HEAD")
        return self.shas[name]


def day(n: int) -> str:
    return f"2024-01-{n:02d}T12:00:00+00:00"


def build_history(repo: Repo) -> Repo:
    """init, then one change per commit on main, and an invalid commit on branch `broken`."""
    repo.commit("init", day(1))
    repo.edit("environments/prod.yaml", 'version: "1.0.0"', 'version: "1.1.0"')
    repo.commit("bump", day(2))
    repo.edit("environments/prod.yaml", "replicas: 3\n    endpoint: {port: 9102}", "replicas: 5\n    endpoint: {port: 9102}")
    repo.commit("scale", day(3))
    repo.edit("environments/dev.yaml", "endpoint: {port: 8101}", "endpoint: {port: 8101}\n    env: {CATALOG_CURRENCY: USD}")
    repo.edit("environments/prod.yaml", "CATALOG_CURRENCY: USD", "CATALOG_CURRENCY: USD\n      PAYMENT_API_KEY: sk_live_123")
    repo.commit("config", day(4))
    repo.write("services/payments.yaml", (repo.project / "services/catalog.yaml").read_text()
               .replace("name: catalog", "name: payments").replace("apps/catalog", "apps/payments")
               .replace("host: catalog.", "host: payments."))
    repo.write("apps/payments/app.py", (repo.project / "apps/catalog/app.py").read_text())
    repo.edit("environments/prod.yaml", "  orders:\n", "  payments:\n    replicas: 2\n  orders:\n")
    repo.commit("add", day(5))
    repo.edit("environments/dev.yaml", "  frontend:\n    endpoint: {port: 8100}\n    env:\n      FRONTEND_TITLE: Shipyard Shop (dev)\n", "")
    repo.commit("remove", day(6))
    (repo.project / "apps/catalog/app.py").write_text((repo.project / "apps/catalog/app.py").read_text() + "\n# faster\n")
    repo.commit("code", day(7))
    repo.git("switch", "--quiet", "-c", "broken")
    repo.edit("environments/prod.yaml", "replicas: 3\n    endpoint: {port: 9101}", "replicas: -1\n    endpoint: {port: 9101}")
    repo.edit("environments/dev.yaml", "orders:\n    endpoint: {port: 8102}", "orders:\n    endpoint: {port: 80}")
    repo.commit("broken", day(8))
    repo.git("switch", "--quiet", "main")
    return repo


@pytest.fixture(scope="module", autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the developer's git config out of the tests (one repository serves the whole module)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path_factory.mktemp("home") / "gitconfig"))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHIPYARD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, isolated_git: None) -> Repo:
    return build_history(Repo(tmp_path_factory.mktemp("shop") / "repo"))


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exited:
            main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return exited.value.code, out, err
    return invoke


def plan_json(run, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run("plan", *args, "-o", "json")
    assert code in (0, 3), err
    return code, json.loads(out)


# ---- plan ---------------------------------------------------------------------------------------------


def test_plan_version_bump_json_shape(shop, run):
    code, data = plan_json(run, shop.path, "--env", "prod", "--from", shop.shas["init"], "--to", shop.shas["bump"])
    assert code == 3
    assert data == {
        "from": {"rev": shop.shas["init"], "sha": shop.shas["init"]},
        "to": {"rev": shop.shas["bump"], "sha": shop.shas["bump"]},
        "environments": {"prod": {
            "services": {"catalog": {"change": "changed", "version": {"from": "1.0.0", "to": "1.1.0"}, "replicas": None,
                                     "config": [], "rollout": "canary"}},
            "unchanged": ["frontend", "orders"],
        }},
        "changed": True,
    }


def test_plan_table_names_each_change(shop, run):
    code, out, _ = run("plan", shop.path, "--env", "prod", "--from", shop.shas["init"], "--to", shop.shas["config"])
    assert code == 3
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == f"Plan: {shop.shas['init']} ({shop.shas['init'][:12]}) → {shop.shas['config']} " \
                       f"({shop.shas['config'][:12]})"
    assert "~ catalog  version 1.0.0 → 1.1.0 (canary)" in lines
    assert "~ orders   replicas 3 → 5 (scale)" in lines
    assert "env.PAYMENT_API_KEY: (unset) → ***" in lines
    assert "sk_live_123" not in out
    assert "unchanged: frontend" in lines


def test_plan_nothing_changes_exits_0(shop, run):
    code, out, err = run("plan", shop.path, "--env", "prod", "--from", "main", "--to", "main")
    assert (code, err) == (0, "")
    assert "no changes: catalog, frontend, orders, payments" in out and out.rstrip().endswith("No changes.")
    # Changes only to prod leave dev as it was.
    code, data = plan_json(run, shop.path, "--env", "dev", "--from", shop.shas["init"], "--to", shop.shas["scale"])
    assert code == 0 and data["changed"] is False
    assert data["environments"]["dev"] == {"services": {}, "unchanged": ["catalog", "frontend", "orders"]}


def test_plan_all_environments(shop, run):
    code, data = plan_json(run, shop.path, "--env", "all", "--from", shop.shas["scale"], "--to", shop.shas["remove"])
    assert code == 3 and list(data["environments"]) == ["dev", "prod"]
    dev, prod = data["environments"]["dev"], data["environments"]["prod"]
    assert dev["services"] == {
        "catalog": {"change": "changed", "version": None, "replicas": None, "rollout": "rolling",
                    "config": [{"key": "env.CATALOG_CURRENCY", "from": "EUR", "to": "USD"}]},
        "frontend": {"change": "removed", "version": {"from": "1.0.0", "to": None}, "replicas": {"from": 1, "to": None},
                     "config": [], "rollout": "scale"},
    }
    assert dev["unchanged"] == ["orders"]
    assert prod["services"]["catalog"]["config"] == [{"key": "env.PAYMENT_API_KEY", "from": None, "to": "***"}]
    assert prod["services"]["payments"] == {"change": "added", "version": {"from": None, "to": "1.0.0"},
                                            "replicas": {"from": None, "to": 2}, "config": [], "rollout": "scale"}
    assert prod["unchanged"] == ["frontend", "orders"]


def test_plan_code_change_alone_is_a_release(shop, run):
    code, data = plan_json(run, shop.path, "--env", "all", "--from", shop.shas["remove"], "--to", shop.shas["code"])
    assert code == 3
    for env, rollout in (("dev", "rolling"), ("prod", "canary")):
        catalog = data["environments"][env]["services"]["catalog"]
        assert [item["key"] for item in catalog["config"]] == ["artifact.code"] and catalog["rollout"] == rollout


def test_plan_invalid_target_exits_1_with_every_problem(shop, run):
    code, out, err = run("plan", shop.path, "--env", "all", "--from", "main", "--to", "broken")
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"error: the target revision broken ({shop.shas['broken'][:12]})")
    problems = [line for line in lines if PROBLEM_LINE.match(line)]
    assert {line.split(":")[0] for line in problems} == {"environments/prod.yaml", "environments/dev.yaml"}
    assert lines[-1] == f"{len(problems)} errors"
    # One environment: the problems that environment has.
    code, out, err = run("plan", shop.path, "--env", "prod", "--from", "main", "--to", "broken")
    assert code == 1 and out == ""
    assert [line.split(":")[0] for line in err.splitlines() if PROBLEM_LINE.match(line)] == ["environments/prod.yaml"]


def test_plan_invalid_base_still_previews(shop, run):
    code, out, err = run("plan", shop.path, "--env", "prod", "--from", "broken", "--to", "main", "-o", "json")
    assert code == 3
    assert "note: prod is invalid at the base revision broken" in err and not PROBLEM_LINE.search(err)
    services = json.loads(out)["environments"]["prod"]["services"]
    assert {name: s["change"] for name, s in services.items()} == dict.fromkeys(
        ["catalog", "frontend", "orders", "payments"], "added")


def test_plan_unresolvable_revision_or_environment_exits_1(shop, run):
    code, out, err = run("plan", shop.path, "--env", "prod", "--from", "main", "--to", "no-such-branch")
    assert (code, out) == (1, "") and err.startswith("Error: ") and len(err.splitlines()) == 1
    code, out, err = run("plan", shop.path, "--env", "staging", "--from", "main", "--to", "main")
    assert code == 1 and "unknown environment `staging`" in err


def test_plan_uncommitted_changes_do_not_leak(shop, run):
    prod = shop.project / "environments/prod.yaml"
    original = prod.read_text()
    prod.write_text(original.replace('version: "1.1.0"', 'version: "9.9.9"'))
    try:
        code, out, _ = run("plan", shop.path, "--env", "prod", "--from", "main", "--to", "HEAD")
        assert code == 0 and "9.9.9" not in out
    finally:
        prod.write_text(original)


def test_plan_from_defaults_to_the_current_branch(shop, run):
    code, data = plan_json(run, shop.path, "--env", "prod", "--to", shop.shas["add"])
    assert data["from"] == {"rev": "main", "sha": shop.shas["code"]}
    assert code == 3 and list(data["environments"]["prod"]["services"]) == ["catalog"]  # the code change, undone


def test_plan_from_a_file_url_matches_the_path(shop, run):
    args = ["--env", "all", "--from", shop.shas["init"], "--to", "main"]
    code_url, from_url = plan_json(run, shop.path.as_uri(), *args)
    code_path, from_path = plan_json(run, shop.path, *args)
    assert code_url == code_path == 3 and from_url == from_path
    code, data = plan_json(run, shop.path.as_uri(), "--env", "prod", "--ref", "main", "--to", shop.shas["code"])
    assert code == 0 and data["from"]["sha"] == shop.shas["code"]


def test_plan_project_in_a_subdirectory(tmp_path, run):
    repo = Repo(tmp_path / "mono", project="deploy/shop")
    repo.commit("init", day(1))
    repo.edit("environments/prod.yaml", "replicas: 2", "replicas: 4")
    repo.commit("scale frontend", day(2))
    expected = {"frontend": {"change": "changed", "version": None, "replicas": {"from": 2, "to": 4}, "config": [],
                             "rollout": "scale"}}
    for source, extra in ((repo.path, ["--path", "deploy/shop"]), (repo.project, []),
                          (repo.path / "deploy", ["--path", "shop"]), (repo.path.as_uri(), ["--path", "deploy/shop"])):
        code, data = plan_json(run, source, *extra, "--env", "prod", "--from", "main~1", "--to", "main")
        assert (code, data["environments"]["prod"]["services"]) == (3, expected), source
    code, out, err = run("plan", repo.path, "--path", "nowhere", "--env", "prod", "--from", "main~1", "--to", "main")
    assert code == 1 and "no directory 'nowhere'" in err


# ---- render --at ------------------------------------------------------------------------------------------


def checkout_render(shop: Repo, tmp_path: Path, sha: str, environment: str) -> dict[str, Any]:
    """The environment rendered from a plain checkout of SHA: what `--at` must reproduce."""
    clone = tmp_path / f"clone-{sha[:8]}"
    subprocess.run(["git", "clone", "--quiet", str(shop.path), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", sha], check=True)
    return render(clone, environment).to_dict()


@pytest.mark.parametrize(("at", "commit"), [
    ("sha", "scale"),
    ("2024-01-02T12:00:00+00:00", "bump"),  # at the very second of a commit: that commit
    ("2024-01-04T11:59:59Z", "scale"),
    ("2024-01-05T09:00:00+02:00", "config"),
    ("2030-01-01T00:00:00Z", "code"),  # on main, not the newer `broken` branch
])  # fmt: skip
def test_render_at_reproduces_the_past(shop, run, tmp_path, at, commit):
    sha = shop.shas[commit]
    code, out, err = run("render", shop.path, "--env", "prod", "--at", sha if at == "sha" else at, "-o", "json")
    assert code == 0, err
    assert json.loads(out) == checkout_render(shop, tmp_path, sha, "prod")
    assert sha[:12] in err  # which commit it rendered, on stderr


def test_render_at_via_url_and_ref(shop, run, tmp_path):
    code, out, _ = run("render", shop.path.as_uri(), "--env", "dev", "--at", "2024-01-06T12:00:00Z", "-o", "json")
    assert code == 0 and json.loads(out) == checkout_render(shop, tmp_path, shop.shas["remove"], "dev")
    code, out, _ = run("render", shop.path, "--env", "dev", "--ref", "broken", "--at", "2024-01-07T12:00:00Z",
                       "-o", "json")
    assert code == 0 and json.loads(out)["services"]["catalog"] == checkout_render(
        shop, tmp_path, shop.shas["code"], "dev")["services"]["catalog"]


def test_render_at_an_invalid_commit_prints_its_problems(shop, run):
    code, out, err = run("render", shop.path, "--env", "prod", "--at", "broken")
    assert code == 1 and out == ""
    assert any(PROBLEM_LINE.match(line) for line in err.splitlines())


@pytest.mark.parametrize("at", ["2023-12-31T23:59:59Z", "2024-01-01T11:59:59+00:00"])
def test_render_at_a_date_before_the_first_commit_is_one_line_error(shop, run, at):
    code, out, err = run("render", shop.path, "--env", "prod", "--at", at)
    assert (code, out) == (1, "")
    assert err.startswith("Error: no commit on 'main'") and len(err.splitlines()) == 1


def test_render_without_at_still_reads_the_directory_as_it_is(shop, run):
    prod = shop.project / "environments/prod.yaml"
    original = prod.read_text()
    prod.write_text(original.replace('version: "1.1.0"', 'version: "9.9.9"'))
    try:
        code, out, _ = run("render", shop.path, "--env", "prod", "-o", "json")
        assert code == 0 and json.loads(out)["services"]["catalog"]["version"] == "9.9.9"
        code, out, _ = run("render", shop.path, "--env", "prod", "--at", "HEAD", "-o", "json")
        assert code == 0 and json.loads(out)["services"]["catalog"]["version"] == "1.1.0"
    finally:
        prod.write_text(original)
