"""artifact.yaml: how a service's source directory describes itself (apiVersion shipyard/v1, kind Artifact)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, ValidationError, model_validator

from shipyard.artifacts.errors import ArtifactError
from shipyard.spec.models import Model, Name
from shipyard.spec.problems import problems_from_validation
from shipyard.spec.types import Duration
from shipyard.spec.yamlfile import YamlSyntaxError, read_yaml

FILE_NAME = "artifact.yaml"
DEFAULT_EXCLUDE = (".git", "__pycache__", ".venv", "node_modules", ".pytest_cache", "*.pyc", ".shipyard")


class Stage(Model):
    name: Name = Field(description="Stage name: `unit`, `integration`, `contract`, `component` or any other.")
    command: Union[list[str], str] = Field(description="argv, or a shell command line, run in the source dir.")
    timeout: Duration = Field(default=300.0, gt=0, description="The stage fails when it runs longer.")


class Pipeline(Model):
    stages: list[Stage] = Field(default_factory=list, description="Ordered stages, run fast-first.")


class Health(Model):
    readiness: Optional[str] = Field(default=None, pattern=r"^/", description="Readiness path hint.")
    liveness: Optional[str] = Field(default=None, pattern=r"^/", description="Liveness path hint.")


class ArtifactFile(Model):
    api_version: Literal["shipyard/v1"] = Field(description="Always `shipyard/v1`.")
    kind: Literal["Artifact"]
    name: Name = Field(description="The artifact's name in the store (the repository in a registry).")
    command: Optional[list[str]] = Field(default=None, min_length=1, description="argv run in the app dir.")
    base: str = Field(default="host", min_length=1,
                      description="`host` (an app image run on the host's read-only root) or an image reference.")
    include: list[str] = Field(default_factory=lambda: ["*"], description="Glob patterns of files to ship.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of files left out.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment defaults in the image config.")
    health: Health = Field(default_factory=Health)
    pipeline: Pipeline = Field(default_factory=Pipeline)

    @model_validator(mode="after")
    def _command_for_host(self) -> "ArtifactFile":
        if self.base == "host" and not self.command:
            raise ValueError("an app image (`base: host`) needs a `command`")
        names = [stage.name for stage in self.pipeline.stages]
        if len(names) != len(set(names)):
            raise ValueError("pipeline stage names must be unique")
        return self


def load_descriptor(source: Path) -> ArtifactFile:
    """The artifact.yaml of SOURCE; ArtifactError naming file, line and field when missing or invalid."""
    path = source / FILE_NAME
    if not path.is_file():
        raise ArtifactError(f"{path}: not found (a source directory describes itself in {FILE_NAME})")
    try:
        document = read_yaml(path, str(path))
    except YamlSyntaxError as exc:
        raise ArtifactError(str(exc)) from exc
    try:
        return ArtifactFile.model_validate(document.data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, ArtifactFile, document.position, document.data)
        raise ArtifactError("; ".join(str(p) for p in problems)) from exc
