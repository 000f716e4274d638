"""Rendering an environment: each service's base merged with the environment's overlay, validated in full."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shipyard.artifacts.errors import ArtifactError, NotFound
from shipyard.artifacts.stores import open_store, resolve_as_of, store_location
from shipyard.errors import Problem, SpecError
from shipyard.flags.evaluate import FlagSet
from shipyard.flags.files import load_flags
from shipyard.spec.artifact_path import artifact_problem
from shipyard.secrets.validate import file_problems, reference_problems, secret_files
from shipyard.spec.hints import closest
from shipyard.spec.load import ProjectSource, file_has_problems, load_project, service_data
from shipyard.spec.merge import merge, merge_positions
from shipyard.spec.models import SecretRef, Service
from shipyard.spec.problems import field_path, problems_from_validation
from shipyard.spec.yamlfile import PathKey, Position, YamlDocument

FIXED_FIELDS = ("apiVersion", "kind", "name")


@dataclass(frozen=True)
class DesiredEnvironment:
    """The fully merged desired state of one environment."""

    project: str
    environment: str
    root: Path
    services: dict[str, Service]
    flags: FlagSet | None = None  # the environment's feature flags (flagd format), see shipyard.flags
    store: str | None = None                                    # the project's `store:` (artifact images)
    digests: dict[str, str] = field(default_factory=dict)      # service → resolved digest of its image

    def to_dict(self) -> dict[str, Any]:
        """The shape `shipyard render -o json` prints: every effective field, services sorted by name.

        With flags, `flags` is the environment's flagd flag file (overlays merged, `$ref`s resolved).
        """
        services = {}
        for name in sorted(self.services):
            data = self.services[name].model_dump(mode="json", by_alias=True, exclude={"api_version", "kind"})
            artifact = data["artifact"]
            for key in ("path", "image"):
                if artifact.get(key) is None:
                    artifact.pop(key, None)
            if name in self.digests:
                artifact["digest"] = self.digests[name]
            services[name] = data
        rendered: dict[str, Any] = {"project": self.project, "environment": self.environment, "services": services}
        if self.flags is not None and self.flags.flags:
            rendered["flags"] = self.flags.document
        return rendered


def render(root: Path, environment: str, as_of: datetime | None = None) -> DesiredEnvironment:
    """Render one environment of the project at `root`; raises SpecError with every problem of the project.
    AS_OF resolves image versions to the digests they had then (a past revision's render)."""
    source = load_project(root)
    desired, problems = render_environment(source, environment, as_of)
    problems = _unique(source.problems + problems)
    if problems or desired is None:
        raise SpecError(problems)
    return desired


def check(root: Path, environment: str | None = None) -> list[Problem]:
    """Every problem of the project, for one environment or (default) all of them."""
    source = load_project(root)
    problems = list(source.problems)
    names = [environment] if environment else sorted(source.environments)
    for name in names:
        problems.extend(render_environment(source, name)[1])
    if environment is None:  # files under secrets/ that no environment renders must be encrypted too
        for relative in secret_files(source.root):
            problems.extend(file_problems(source.root, relative)[0])
    return _unique(problems)


def render_environment(source: ProjectSource, environment: str,
                       as_of: datetime | None = None) -> tuple[DesiredEnvironment | None, list[Problem]]:
    """Merge and validate every service of one environment; the problems are those of this environment."""
    if environment not in source.environments:
        if file_has_problems(source, "environments", environment):
            return None, []  # its file's problems are in source.problems already
        known = ", ".join(sorted(source.environments)) or "none"
        hint = closest(environment, source.environments)
        message = f"unknown environment `{environment}` (defined: {known})" + (f"; did you mean `{hint}`?" if hint else "")
        return None, [Problem("environments", 1, 1, "", message)]
    env_doc, env_model = source.environments[environment]
    services: dict[str, Service] = {}
    positions: dict[str, dict[PathKey, Position]] = {}
    problems: list[Problem] = []
    for name in env_model.services:
        merged = _merge_service(source, env_doc, name, problems)
        if merged is None:
            continue
        data, located = merged
        try:
            services[name] = Service.model_validate(data, by_name=False)
            positions[name] = located
        except ValidationError as exc:
            problems.extend(problems_from_validation(exc, Service, _locator(located, env_doc.file), data))
            salvaged = _salvage(data, exc)  # so the checks across services still see its other fields
            if salvaged is not None:
                services[name], positions[name] = salvaged, located
    problems.extend(_check_references(source, services, positions, set(env_model.services)))
    store = source.project.store if source.project else None
    digests: dict[str, str] = {}
    if not problems:
        digests, image_problems = resolve_images(source.root, store, services,
                                                 {n: _locator(p, env_doc.file) for n, p in positions.items()}, as_of)
        problems.extend(image_problems)
    flags, flag_problems = load_flags(source.root, env_doc)
    problems.extend(flag_problems)
    problems.extend(_check_secrets(source.root, environment, services, positions))
    problems.extend(_check_databases(services, positions))
    if problems or source.project is None:
        return None, problems
    return (DesiredEnvironment(source.project.name, environment, source.root, services, flags, store, digests),
            problems)


def resolve_images(root: Path, store: str | None, services: dict[str, Service], locators: dict[str, Any],
                   as_of: datetime | None = None) -> tuple[dict[str, str], list[Problem]]:
    """Each `artifact.image` service's digest at its version; a Problem at `version` for one not in the store."""
    wanted = {name: s for name, s in services.items() if s.artifact.image is not None}
    if not wanted:
        return {}, []
    digests: dict[str, str] = {}
    problems: list[Problem] = []
    try:
        opened = open_store(store_location(None, store, root))
    except ArtifactError as exc:
        return {}, [_at(locators[name], ("artifact", "image"), str(exc)) for name in sorted(wanted)]
    for name in sorted(wanted):
        service = wanted[name]
        image = service.artifact.image or ""
        try:
            digests[name] = resolve_as_of(opened, image, service.version, as_of)
        except NotFound as exc:
            known = ", ".join(exc.versions) or "none; publish one with `shipyard pipeline run SOURCE_DIR --version " \
                f"{service.version}`"
            problems.append(_at(locators[name], ("version",), f"service `{name}`: version `{service.version}` of "
                                f"artifact `{image}` is not in the store {opened.location} (versions: {known})"))
        except ArtifactError as exc:
            problems.append(_at(locators[name], ("artifact", "image"), str(exc)))
    return digests, problems


def _merge_service(
    source: ProjectSource, env_doc: YamlDocument, name: str, problems: list[Problem]
) -> tuple[dict[str, Any], dict[PathKey, Position]] | None:
    key_position = env_doc.position(("services", name))
    if name not in source.services:
        if file_has_problems(source, "services", name):
            return None  # its file's problems are reported already
        hint = closest(name, source.services)
        problems.append(_problem(key_position, f"services.{name}", f"unknown service `{name}`: no services/*.yaml "
                                 "defines it" + (f"; did you mean `{hint}`?" if hint else "")))
        return None
    overlay = env_doc.data["services"][name]
    if overlay is None:
        overlay = {}
    if not isinstance(overlay, dict):
        problems.append(_problem(key_position, f"services.{name}", "expected a mapping of Service fields to override"))
        return None
    base_doc = source.services[name]
    base = service_data(base_doc)
    for fixed in FIXED_FIELDS:
        if fixed in overlay and overlay[fixed] != base.get(fixed):
            position = env_doc.position(("services", name, fixed))
            problems.append(_problem(position, f"services.{name}.{fixed}", f"`{fixed}` cannot be changed by an overlay"))
            return None
    merged = merge(base, overlay)
    prefix: PathKey = ("services", name)
    overlay_positions = {
        path[2:]: Position(pos.file, pos.line, pos.column, prefix)
        for path, pos in env_doc.positions.items() if path[:2] == prefix and len(path) > 2
    }
    return merged, merge_positions(merged, base_doc.positions, overlay_positions)


def _salvage(data: dict[str, Any], error: ValidationError) -> Service | None:
    """The service without the fields its validation ERROR names (each defaulted), or None when that is not valid
    either. Only the checks across services (ports, routes, needs, secrets, databases) use it: an environment with
    a problem is never rendered, but one typo should not hide a port clash in the same file."""
    pruned = copy.deepcopy(data)
    for detail in error.errors():
        path = list(itertools.takewhile(lambda part: not isinstance(part, int), detail["loc"]))  # a list goes whole
        if not path:
            return None  # an error of the whole model
        parent: Any = pruned
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(path[-1], None)  # absent: a missing field, or a list another error already removed
    try:
        return Service.model_validate(pruned, by_name=False)
    except ValidationError:
        return None


def _locator(positions: dict[PathKey, Position], fallback_file: str):  # type: ignore[no-untyped-def]
    def locate(path: PathKey) -> Position:
        for end in range(len(path), 0, -1):
            found = positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return Position(fallback_file, 1, 1)
    return locate


def _check_references(
    source: ProjectSource, services: dict[str, Service], positions: dict[str, dict[PathKey, Position]],
    deployed: set[str],
) -> list[Problem]:
    problems: list[Problem] = []
    ports: dict[int, str] = {}
    routes: dict[tuple[str | None, str | None], str] = {}
    for name in sorted(services):
        service, locate = services[name], _locator(positions[name], "services")
        for index, dependency in enumerate(service.needs):
            path: PathKey = ("needs", index)
            if dependency == name:
                problems.append(_at(locate, path, "a service cannot need itself"))
            elif dependency not in deployed:
                problems.append(_at(locate, path, _missing_dependency(source, dependency)))
        port = service.endpoint.port
        if port is not None:
            if port in ports:
                problems.append(_at(locate, ("endpoint", "port"), f"port {port} is already the endpoint of `{ports[port]}`"))
            ports.setdefault(port, name)
        if service.ingress is not None:
            route = (service.ingress.host, service.ingress.path)
            if route in routes:
                problems.append(_at(locate, ("ingress",), f"the same ingress host and path as `{routes[route]}`"))
            routes.setdefault(route, name)
        problem = artifact_problem(source.root, service.artifact.path) if service.artifact.path is not None else None
        if problem:
            problems.append(_at(locate, ("artifact", "path"), problem))
    return problems


def _check_secrets(root: Path, environment: str, services: dict[str, Service],
                   positions: dict[str, dict[PathKey, Position]]) -> list[Problem]:
    """`secrets/<env>.yaml` holds no plaintext, and every `{secret: ...}` of a service names a key in it."""
    problems = file_problems(root, f"secrets/{environment}.yaml")[0] if (root / "secrets" / f"{environment}.yaml").is_file() \
        else []
    refs = []
    for name in sorted(services):
        locate = _locator(positions[name], "services")
        for variable, value in services[name].env.items():
            if isinstance(value, SecretRef):
                position = locate(("env", variable, "secret"))
                refs.append((value.secret, position, field_path((*position.prefix, "env", variable, "secret"))))
    return problems + reference_problems(root, environment, refs)


def _check_databases(services: dict[str, Service], positions: dict[str, dict[PathKey, Position]]) -> list[Problem]:
    """A database belongs to one service: the same name twice in an environment would be shared."""
    owners: dict[str, str] = {}
    problems = []
    for name in sorted(services):
        locate = _locator(positions[name], "services")
        for index, database in enumerate(services[name].databases):
            key = database.name.replace("-", "_")
            if key in owners:
                problems.append(_at(locate, ("databases", index, "name"), f"database `{database.name}` already "
                                    f"belongs to `{owners[key]}`: services do not share databases"))
            owners.setdefault(key, name)
    return problems


def _missing_dependency(source: ProjectSource, dependency: str) -> str:
    if dependency in source.services:
        return f"needs `{dependency}`, which this environment does not deploy"
    hint = closest(dependency, source.services)
    return f"unknown service `{dependency}`" + (f"; did you mean `{hint}`?" if hint else "")


def _at(locate, path: PathKey, message: str) -> Problem:  # type: ignore[no-untyped-def]
    position = locate(path)
    return Problem(position.file, position.line, position.column, field_path((*position.prefix, *path)), message)


def _problem(position: Position, field: str, message: str) -> Problem:
    return Problem(position.file, position.line, position.column, field, message)


def _unique(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.field, p.message))
