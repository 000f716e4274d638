"""Reading a config repository: shipyard.yaml, services/*.yaml and environments/*.yaml, with every problem found."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from shipyard.errors import Problem
from shipyard.spec.hints import closest
from shipyard.spec.models import API_VERSION, Environment, Project, Service
from shipyard.spec.problems import problems_from_validation
from shipyard.spec.yamlfile import YamlDocument, YamlSyntaxError, read_yaml

PROJECT_FILE = "shipyard.yaml"
KINDS: dict[str, type[BaseModel]] = {"Project": Project, "Service": Service, "Environment": Environment}


@dataclass
class ProjectSource:
    """The parsed files of a config repository; `problems` holds everything wrong with them on their own."""

    root: Path
    project: Project | None = None
    services: dict[str, YamlDocument] = field(default_factory=dict)
    environments: dict[str, tuple[YamlDocument, Environment]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def load_project(root: Path) -> ProjectSource:
    """Parse and check each file of the project at `root`; never raises for bad content."""
    source = ProjectSource(root=root)
    project_doc = _read(source, root / PROJECT_FILE, required=True)
    if project_doc is not None:
        source.project = _validate(source, project_doc, "Project")  # type: ignore[assignment]
    for document in _read_dir(source, "services"):
        _add_service(source, document)
    for document in _read_dir(source, "environments"):
        _add_environment(source, document)
    if source.project is not None and project_doc is not None:
        _check_environment_list(source, project_doc)
        _check_promotion(source, project_doc)
    return source


def _read(source: ProjectSource, path: Path, required: bool = False) -> YamlDocument | None:
    relative = path.relative_to(source.root).as_posix()
    if not path.is_file():
        if required:
            source.problems.append(Problem(relative, 1, 1, "", f"missing: a project needs {PROJECT_FILE} "
                                           f"(kind: Project) in {source.root}"))
        return None
    try:
        return read_yaml(path, relative)
    except YamlSyntaxError as exc:
        source.problems.extend(exc.problems)
        return None


def _read_dir(source: ProjectSource, name: str) -> list[YamlDocument]:
    directory = source.root / name
    if not directory.is_dir():
        return []
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [doc for doc in (_read(source, p) for p in paths) if doc is not None]


def _validate(source: ProjectSource, document: YamlDocument, expected_kind: str) -> BaseModel | None:
    data = document.data
    if not isinstance(data, dict):
        source.problems.append(Problem(document.file, 1, 1, "", f"expected a mapping with `kind: {expected_kind}`"))
        return None
    kind = data.get("kind")
    if kind != expected_kind:
        position = document.position(("kind",))
        where = f"found `{kind}`" if kind is not None else "`kind` is missing"
        source.problems.append(Problem(document.file, position.line, position.column, "kind",
                                       f"expected `kind: {expected_kind}` in this directory, {where}"))
        return None
    if data.get("apiVersion") != API_VERSION:
        position = document.position(("apiVersion",))
        source.problems.append(Problem(document.file, position.line, position.column, "apiVersion",
                                       f"expected `apiVersion: {API_VERSION}`, got {data.get('apiVersion')!r}"))
        return None
    model = KINDS[expected_kind]
    try:
        return model.model_validate(data, by_name=False)  # YAML keys are the camelCase aliases only
    except ValidationError as exc:
        source.problems.extend(problems_from_validation(exc, model, document.position, data))
        return None


def _add_service(source: ProjectSource, document: YamlDocument) -> None:
    service = _validate(source, document, "Service")
    name = _declared_name(document)
    if service is None and name is None:
        return
    name = name or Path(document.file).stem
    if name in source.services:
        _duplicate(source, document, "service", name, source.services[name].file)
        return
    source.services[name] = document


def _add_environment(source: ProjectSource, document: YamlDocument) -> None:
    environment = _validate(source, document, "Environment")
    if not isinstance(environment, Environment):
        return
    if environment.name in source.environments:
        _duplicate(source, document, "environment", environment.name, source.environments[environment.name][0].file)
        return
    source.environments[environment.name] = (document, environment)


def _declared_name(document: YamlDocument) -> str | None:
    data = document.data
    if (isinstance(data, dict) and isinstance(data.get("name"), str) and data.get("kind") == "Service"
            and data.get("apiVersion") == API_VERSION):
        return data["name"]
    return None


def _duplicate(source: ProjectSource, document: YamlDocument, what: str, name: str, first: str) -> None:
    position = document.position(("name",))
    source.problems.append(Problem(document.file, position.line, position.column, "name",
                                   f"duplicate {what} name `{name}`: already defined in {first}"))


def _check_environment_list(source: ProjectSource, project_doc: YamlDocument) -> None:
    assert source.project is not None
    listed = source.project.environment_names
    for index, name in enumerate(listed):
        position = project_doc.position(("environments", index))
        if listed.index(name) != index:
            source.problems.append(Problem(project_doc.file, position.line, position.column,
                                           f"environments[{index}]", f"environment `{name}` is listed twice"))
        elif name not in source.environments and not file_has_problems(source, "environments", name):
            source.problems.append(Problem(project_doc.file, position.line, position.column,
                                           f"environments[{index}]",
                                           f"no environments/{name}.yaml defines environment `{name}`"))
    for name, (document, _) in source.environments.items():
        if name not in listed:
            position = document.position(("name",))
            hint = closest(name, listed)
            source.problems.append(Problem(document.file, position.line, position.column, "name",
                                           f"environment `{name}` is not listed in {PROJECT_FILE} environments"
                                           + (f"; did you mean `{hint}`?" if hint else "")))


def _check_promotion(source: ProjectSource, project_doc: YamlDocument) -> None:
    """The first stage has no edge into it; automation rules name services and environments that exist."""
    assert source.project is not None
    first = source.project.environments[0]
    for field in ("auto", "soak", "verify", "approval"):
        if field in first.model_fields_set:
            position = project_doc.position(("environments", 0, field))
            source.problems.append(Problem(project_doc.file, position.line, position.column, f"environments[0].{field}",
                                           f"`{field}` describes how versions arrive from the previous environment, "
                                           f"and `{first.name}` is the first: use `automation:` to feed it"))
    names = source.project.environment_names
    for index, rule in enumerate(source.project.automation):
        for field, value, known in (("service", rule.service, source.services), ("environment", rule.environment, names)):
            if value not in known and not file_has_problems(source, f"{field}s", value):
                position = project_doc.position(("automation", index, field))
                hint = closest(value, known)
                source.problems.append(Problem(project_doc.file, position.line, position.column,
                                               f"automation[{index}].{field}", f"unknown {field} `{value}`"
                                               + (f"; did you mean `{hint}`?" if hint else "")))


def file_has_problems(source: ProjectSource, directory: str, name: str) -> bool:
    """Whether `DIRECTORY/NAME.yaml` was reported broken, so that what it defines is not also called missing."""
    return any(p.file in (f"{directory}/{name}.yaml", f"{directory}/{name}.yml") for p in source.problems)


def service_data(document: YamlDocument) -> dict[str, Any]:
    """The raw mapping of a service file (empty when it is not a mapping)."""
    return document.data if isinstance(document.data, dict) else {}
