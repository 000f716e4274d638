"""Flags from git: a flag commit reaches OFREP after `sync` without restarting anything; an invalid flag file
rejects the commit with its file and line, and the last good flags keep being served."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.cli.test_follow import GitPlane, plane  # noqa: F401 - the fixture
from tests.projects import probe_service
from tests.source.conftest import isolated_git  # noqa: F401 - keeps the developer's git config out

__all__ = ["plane", "isolated_git"]


def flags(default: str) -> dict[str, Any]:
    return {"flags": {"banner": {"state": "ENABLED", "variants": {"on": True, "off": False},
                                 "defaultVariant": default}}}


def commit_flags(cp: GitPlane, document: dict[str, Any], message: str) -> str:
    (cp.origin.path / "flags").mkdir(exist_ok=True)
    (cp.origin.path / "flags" / "site.json").write_text(json.dumps(document, indent=2))
    return cp.commit(message, [probe_service("alpha")])


def banner(ofrep: str) -> Any:
    return httpx.post(f"{ofrep}/ofrep/v1/evaluate/flags/banner", json={"context": {}}, timeout=5).json()


def test_flag_commits_apply_or_are_rejected_with_file_and_line(plane: Any) -> None:  # noqa: F811
    cp = plane([probe_service("alpha")])
    first = commit_flags(cp, flags("off"), "banner off")
    cp.up("--interval", "10m")
    status = cp.status()
    assert status["revision"] == first
    ofrep, pids = status["ofrep"], [i["pid"] for i in cp.instances("alpha")]
    assert banner(ofrep)["value"] is False

    on = commit_flags(cp, flags("on"), "banner on")
    assert cp.cli("sync").stdout.strip() == on
    assert banner(ofrep)["value"] is True  # served once sync returns, i.e. as soon as it is applied
    assert [i["pid"] for i in cp.instances("alpha")] == pids

    broken = flags("on")
    broken["flags"]["banner"]["variants"]["maybe"] = "perhaps"
    bad = commit_flags(cp, broken, "banner: a string variant")
    result = cp.cli("sync", check=False)
    line = next(n for n, text in enumerate(json.dumps(broken, indent=2).splitlines(), 1) if '"maybe"' in text)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"flags/site.json:{line}:" in result.stderr and "variant `maybe` is a string" in result.stderr
    [ready] = [c for c in cp.status()["conditions"] if c["type"] == "Ready"]
    assert ready["reason"] == "ValidationFailed" and bad[:12] in ready["message"]
    assert cp.status()["revision"] == on and banner(ofrep)["value"] is True
    assert cp.history()[0]["result"] == "rejected"
