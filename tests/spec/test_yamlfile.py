"""Reading one YAML file: limits that keep a hostile file (alias bomb, huge file) a quick, clear error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shipyard.spec.yamlfile import MAX_ALIASES, MAX_BYTES, YamlSyntaxError, read_yaml
from tests.controlplane import run_cli


def alias_bomb(levels: int = 7, width: int = 7) -> str:
    """The "billion laughs" shape: each level is a list of `width` aliases of the level before."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def problem(path: Path) -> str:
    with pytest.raises(YamlSyntaxError) as error:
        read_yaml(path, path.name)
    [found] = error.value.problems
    return str(found)


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert len(bomb.read_bytes()) < 400  # 7^7 = 823,543 strings once expanded
    started = time.process_time()  # CPU time: another process on a shared machine does not count
    message = problem(bomb)
    assert time.process_time() - started < 0.5
    assert "expands to more than 100,000 values" in message and message.startswith("bomb.yaml:")


def test_more_than_100_aliases_is_an_error_at_the_101st(tmp_path: Path) -> None:
    many = tmp_path / "many.yaml"
    many.write_text("base: &b 1\n" + "".join(f"k{i}: *b\n" for i in range(MAX_ALIASES + 1)))
    assert problem(many).startswith(f"many.yaml:{MAX_ALIASES + 2}:")  # the line of the 101st alias
    assert "more than 100 YAML aliases" in problem(many)
    few = tmp_path / "few.yaml"
    few.write_text("base: &b 1\n" + "".join(f"k{i}: *b\n" for i in range(MAX_ALIASES)))
    assert read_yaml(few, "few.yaml").data["k99"] == 1


def test_a_file_over_1_mib_is_refused_unparsed(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("notes: |\n" + ("  " + "x" * 98 + "\n") * (MAX_BYTES // 101 + 1))
    assert "larger than 1 MiB" in problem(big)
    fits = tmp_path / "fits.yaml"
    fits.write_text("notes: |\n" + ("  " + "x" * 98 + "\n") * (MAX_BYTES // 101 - 1))
    assert read_yaml(fits, "fits.yaml").data["notes"].startswith("x")


def test_validate_reports_the_bomb_as_a_validation_error(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "services").mkdir(parents=True)
    (project / "environments").mkdir()
    (project / "shipyard.yaml").write_text("apiVersion: shipyard/v1\nkind: Project\nname: p\nenvironments: [dev]\n")
    (project / "environments" / "dev.yaml").write_text("apiVersion: shipyard/v1\nkind: Environment\nname: dev\n")
    (project / "services" / "bomb.yaml").write_text(alias_bomb())
    started = time.monotonic()
    result = run_cli("validate", str(project), check=False)
    assert result.returncode == 1 and time.monotonic() - started < 10  # a Python start, not minutes
    assert "services/bomb.yaml:1:1: error: the YAML expands to more than 100,000 values" in result.stderr
    assert "Traceback" not in result.stderr
