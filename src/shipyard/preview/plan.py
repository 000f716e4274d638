"""A preview of a change: two revisions of a config repository rendered offline and compared per environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.engine.snapshot import tree_hash
from shipyard.errors import Problem, SpecError
from shipyard.preview.diff import EnvironmentDiff, diff_environment
from shipyard.preview.revisions import History
from shipyard.secrets.validate import with_secret_fingerprints
from shipyard.source.errors import SourceError
from shipyard.source.git import Commit
from shipyard.spec.load import ProjectSource, load_project
from shipyard.spec.render import render_environment

ALL = "all"  # `shipyard plan --env` names it in its help text too

Renderings = dict[str, "dict[str, Any] | None"]  # environment → rendering, None where it does not exist


@dataclass(frozen=True)
class Side:
    """One end of the comparison: the revision as given, and the commit it named."""

    rev: str
    commit: Commit

    def to_dict(self) -> dict[str, str]:
        return {"rev": self.rev, "sha": self.commit.sha}


@dataclass(frozen=True)
class Plan:
    """What moving each environment from the base revision to the target revision would change."""

    base: Side
    target: Side
    environments: Mapping[str, EnvironmentDiff]

    @property
    def changed(self) -> bool:
        return any(diff.changed for diff in self.environments.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.base.to_dict(),
            "to": self.target.to_dict(),
            "environments": {name: diff.to_dict() for name, diff in self.environments.items()},
            "changed": self.changed,
        }


class InvalidTarget(SpecError):
    """The target revision does not render: `problems` says why, `target` which commit it is."""

    def __init__(self, problems: list[Problem], target: Side) -> None:
        super().__init__(problems)
        self.target = target


def make_plan(history: History, base_rev: str, target_rev: str, environment: str,
              note: Callable[[str], None]) -> Plan:
    """Compare ENVIRONMENT (or `all`) between two revisions; NOTE receives what the caller should know.

    An invalid target raises InvalidTarget. An invalid base is only noted: its environments count as
    empty, so the preview still shows what the target would deploy.
    """
    target = Side(target_rev, history.resolve(target_rev))
    base = Side(base_rev, history.resolve(base_rev))
    with history.checkout(target.commit) as root:
        after, missing = _target(root, environment, target)
    try:
        with history.checkout(base.commit) as root:
            before = _base(root, environment, base, note)
    except SourceError as exc:
        note(f"note: cannot read the base revision, so it counts as empty: {exc}")
        before = {}
    if missing and before.get(environment) is None:  # known at neither revision: report the target's problem
        raise InvalidTarget(missing, target)
    names = list(after) + [name for name in before if name not in after]
    return Plan(base, target, {name: diff_environment(before.get(name), after.get(name)) for name in names})


def _target(root: Path, environment: str, target: Side) -> tuple[Renderings, list[Problem]]:
    """The target's renderings; an environment it lacks is None, with the problem to report if the base lacks it too."""
    source = load_project(root)
    if environment != ALL and not source.problems and not _defines(source, environment):
        return {environment: None}, render_environment(source, environment)[1]
    names = _listed(source) if environment == ALL else [environment]
    # For `all`, every environment file too, so that the target is checked as `shipyard validate` would.
    checked = sorted(set(names) | set(source.environments)) if environment == ALL else names
    renderings, problems = _render(source, root, checked)
    if problems:
        raise InvalidTarget(problems, target)
    return {name: renderings[name] for name in names}, []


def _base(root: Path, environment: str, base: Side, note: Callable[[str], None]) -> Renderings:
    """The base's renderings; an environment that does not render there counts as empty, with a note."""
    source = load_project(root)
    if environment == ALL:
        names = _listed(source)
        if source.project is None:
            note(f"note: the base revision {base.rev} ({base.commit.short}) has no valid project, so it "
                 f"counts as empty ({len(source.problems)} errors; see `shipyard validate`)")
    else:
        names = [environment] if source.problems or _defines(source, environment) else []
    renderings: Renderings = {}
    for name in names:
        rendered, problems = _render(source, root, [name])
        if problems:
            count = len(problems)
            note(f"note: {name} is invalid at the base revision {base.rev} ({base.commit.short}), so it counts as "
                 f"empty there ({count} error{'s' if count != 1 else ''}; see "
                 f"`shipyard render SOURCE --env {name} --at {base.commit.short}`)")
            renderings[name] = {"services": {}}  # it exists, but what it deploys now cannot be known
        else:
            renderings[name] = rendered[name]
    return renderings


def _listed(source: ProjectSource) -> list[str]:
    return source.project.environment_names if source.project else []


def _defines(source: ProjectSource, environment: str) -> bool:
    return environment in _listed(source) or environment in source.environments


def _render(source: ProjectSource, root: Path, names: list[str]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Each environment as `render -o json` prints it, with each artifact's content hash as `artifact.code`;
    or the problems that stop them (the project's own, then each environment's), as `render` reports them.

    The project is loaded once by the caller: parsing its YAML is most of the cost.
    """
    renderings: dict[str, dict[str, Any]] = {}
    problems = list(source.problems)
    for name in names:
        desired, found = render_environment(source, name)
        problems.extend(found)
        if desired is not None:
            renderings[name] = _with_code(desired.to_dict(), root)
    if problems or len(renderings) < len(names):
        unique = sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.field, p.message))
        return {}, unique or [Problem("environments", 1, 1, "", f"cannot render {', '.join(names)}")]
    return renderings, []


def _with_code(rendered: dict[str, Any], root: Path) -> dict[str, Any]:
    for service in rendered["services"].values():
        if "path" not in service["artifact"]:
            continue  # an image: its digest says what runs
        artifact = root / service["artifact"]["path"]
        service["artifact"]["code"] = tree_hash(artifact) if artifact.is_dir() else None
    return with_secret_fingerprints(rendered, root)
