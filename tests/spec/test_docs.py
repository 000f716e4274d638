"""docs/config.md is generated from the models: it must equal what the generator prints, and say true things."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shipyard.spec import docs
from shipyard.spec.models import Environment, Project, Service
from shipyard.spec.render import check, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "config.md"
GENERATED = docs.reference()


def test_docs_config_md_is_up_to_date() -> None:
    assert PAGE.is_file(), f"docs/config.md is missing; generate it with `{docs.REGENERATE}`"
    assert PAGE.read_text(encoding="utf-8") == GENERATED, (
        "docs/config.md differs from what the models generate: regenerate it with "
        f"`.venv/bin/{docs.REGENERATE}` and commit the result (edit the INTRO of src/shipyard/spec/docs.py "
        "or the models' Field descriptions, never the page itself)")


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    pending: list[Any] = [root]
    while pending:
        item = pending.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item not in found:
                found.add(item)
                pending += [field.annotation for field in item.model_fields.values()]
        else:
            pending += list(typing.get_args(item))
    return found


ALL_MODELS = sorted(_models(Project) | _models(Service) | _models(Environment), key=lambda m: m.__name__)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_every_field_is_described(model: type[BaseModel]) -> None:
    missing = [name for name in model.model_fields if not docs.description(model, name)]
    assert not missing, (f"{model.__name__}: fields without a description: {missing}; give them "
                         "Field(description=...) in models.py")


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_every_field_is_in_the_page(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert re.search(rf"\| `([\w\[\].]*\.)?{re.escape(field.alias or name)}` \|", GENERATED), (model, name)


def test_extra_descriptions_are_for_fields_the_models_leave_undescribed() -> None:
    for (model, name) in docs.EXTRA_DESCRIPTIONS:
        assert name in model.model_fields, f"docs.EXTRA_DESCRIPTIONS: {model.__name__} has no field {name!r}"
        assert not model.model_fields[name].description, (
            f"{model.__name__}.{name} now has its own description: delete it from docs.EXTRA_DESCRIPTIONS")


def test_every_form_of_a_list_entry_has_a_title() -> None:
    for union in docs.UNION_SECTIONS:
        for variant in docs._variants(union):
            assert variant in docs.VARIANT_TITLES, variant


def _table(kind: str) -> dict[str, tuple[str, str]]:
    """Key → (type, default) of the reference table of one kind."""
    section = GENERATED.split(f"### {kind} — ", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (.*?) \| (.*?) \| .* \|$", section, flags=re.MULTILINE)
    return {key: (kind_, default) for key, kind_, default in rows}


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_defaults_shown_are_those_render_fills_in() -> None:
    minimal = Service.model_validate({"apiVersion": "shipyard/v1", "kind": "Service", "name": "a", "version": "1",
                                      "artifact": {"path": "a", "command": ["a"]}})
    rendered = _flat(minimal.model_dump(mode="json", by_alias=True))
    table = _table("Service")
    checked = 0
    for key, (_, default) in table.items():
        if key == "artifact.path":
            continue  # written by the minimal service itself (one of path and image is required)
        if key in rendered and default.startswith("`"):
            assert default == f"`{docs._yaml(rendered[key])}`", key
            checked += 1
        elif key in rendered and default == "*unset*":
            assert rendered[key] is None, key
            checked += 1
    assert checked > 30


def test_notation_of_defaults() -> None:
    table = _table("Service")
    assert table["resources.memory"] == ("memory quantity > 0", "`128Mi`")
    assert table["resources.cpu"][1] == "`100m`"
    assert table["health.liveness.interval"] == ("duration > 0s", "`10s`")
    assert table["strategy.rolling.maxSurge"][1] == "`25%`"
    assert table["replicas"] == ("integer, 0–1000", "`1`")
    assert table["version"][1] == "*required*"


def _intro_yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", docs.INTRO.format(regenerate=""), flags=re.DOTALL)


def test_the_example_in_the_intro_is_valid_and_renders_as_described(tmp_path: Path) -> None:
    service, environment, project = _intro_yaml_blocks()
    (tmp_path / "services").mkdir()
    (tmp_path / "environments").mkdir()
    (tmp_path / "apps" / "catalog").mkdir(parents=True)
    (tmp_path / "services" / "catalog.yaml").write_text(service)
    (tmp_path / "environments" / "prod.yaml").write_text(environment)
    (tmp_path / "shipyard.yaml").write_text(project)
    assert check(tmp_path) == []
    catalog = render(tmp_path, "prod").to_dict()["services"]["catalog"]
    assert catalog["replicas"] == 3 and catalog["endpoint"]["port"] == 9101
    assert catalog["env"] == {"CATALOG_CURRENCY": "USD"}
    assert catalog["resources"] == {"cpu": "100m", "memory": "64Mi"}
    assert catalog["health"]["readiness"]["interval"] == "5s" and catalog["strategy"]["canary"]["interval"] == "10s"


def test_the_generator_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    docs.main()
    assert capsys.readouterr().out == GENERATED
