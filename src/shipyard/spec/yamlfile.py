"""Reading one YAML file into plain data plus the line and column of every key and item."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from shipyard.errors import Problem

PathKey = tuple[str | int, ...]
_TOO_DEEP = "YAML nested too deeply"
# Bounds on what one file may cost, so that a hostile or broken file (an alias bomb: 334 bytes that
# expand to 1.2 M nodes) is a validation error in milliseconds instead of minutes and gigabytes.
MAX_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_NODES = 100_000


@dataclass(frozen=True)
class Position:
    """Where a value was written: file relative to the project, 1-based line and column."""

    file: str
    line: int
    column: int
    prefix: PathKey = ()  # the value's path inside its file, before the path it has in the model


@dataclass
class YamlDocument:
    """A parsed YAML document as plain Python data, with the position of each key and list item."""

    file: str
    data: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)

    def position(self, path: PathKey) -> Position:
        """The position of the nearest written ancestor of `path` (the top of the file if none)."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return Position(self.file, 1, 1)


def read_yaml(path: Path, relative: str) -> YamlDocument:
    """Parse one file; raises a list of Problems (as YamlSyntaxError) for unreadable or malformed YAML."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise YamlSyntaxError([Problem(relative, 1, 1, "", f"the file is larger than {MAX_BYTES // 2**20} MiB: "
                                                               "split it, or move data out of the config")])
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlSyntaxError([Problem(relative, 1, 1, "", f"cannot read file: {exc}")]) from exc
    yaml = YAML(typ="rt")
    try:
        _check_aliases(yaml, text, relative)
        documents = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(" ".join(part.split()) for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise YamlSyntaxError([Problem(relative, line, column, "", f"YAML syntax: {message}")]) from exc
    except YAMLError as exc:
        raise YamlSyntaxError([Problem(relative, 1, 1, "", "YAML syntax: " + " ".join(str(exc).split()))]) from exc
    except RecursionError as exc:
        raise YamlSyntaxError([Problem(relative, 1, 1, "", _TOO_DEEP)]) from exc
    documents = [d for d in documents if d is not None]
    if not documents:
        raise YamlSyntaxError([Problem(relative, 1, 1, "", "the file is empty: expected one YAML document")])
    if len(documents) > 1:
        raise YamlSyntaxError([Problem(relative, 1, 1, "", "expected one YAML document per file, found "
                                                           f"{len(documents)}")])
    document = YamlDocument(relative, None)
    try:
        if _expanded_size(documents[0], {}) > MAX_NODES:
            raise YamlSyntaxError([Problem(relative, 1, 1, "", f"the YAML expands to more than {MAX_NODES:,} values "
                                                               "(aliases repeat what they name): write it out, or "
                                                               "use fewer aliases")])
        document.data = _plain(documents[0], (), document)
    except RecursionError as exc:
        raise YamlSyntaxError([Problem(relative, 1, 1, "", _TOO_DEEP)]) from exc
    return document


class YamlSyntaxError(Exception):
    """Internal: a file could not be parsed; carries its problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _check_aliases(yaml: YAML, text: str, relative: str) -> None:
    """More than MAX_ALIASES aliases (`*name`, `<<: *name`) is an error, found from the events alone."""
    count = 0
    for event in yaml.parse(text):
        if isinstance(event, AliasEvent):
            count += 1
            if count > MAX_ALIASES:
                mark = event.start_mark
                raise YamlSyntaxError([Problem(relative, mark.line + 1, mark.column + 1, "",
                                               f"more than {MAX_ALIASES} YAML aliases: write the values out, "
                                               "or use fewer anchors")])


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """How many values NODE becomes once its aliases are copied out (as `_plain` does).

    An alias is the same Python object as its anchor, so sizes are remembered by identity and the count
    costs one visit per distinct node; a node that contains itself counts as too large."""
    if not isinstance(node, (CommentedMap, CommentedSeq)):
        return 1
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_NODES + 1  # while being counted: a cycle back to it is "too large"
    children = node.values() if isinstance(node, CommentedMap) else node
    total = 1
    for child in children:
        total += _expanded_size(child, sizes)
        if total > MAX_NODES:
            break
    sizes[id(node)] = total
    return total


def _plain(node: Any, path: PathKey, document: YamlDocument) -> Any:
    """Copy ruamel's round-trip types into plain dict/list/str/int/float/bool, recording positions."""
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            line, column = _key_position(node, key)
            child = (*path, str(key))
            document.positions[child] = Position(document.file, line + 1, column + 1)
            result[str(key)] = _plain(value, child, document)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, column = node.lc.item(index)
            child = (*path, index)
            document.positions[child] = Position(document.file, line + 1, column + 1)
            items.append(_plain(value, child, document))
        return items
    return _scalar(node)


def _key_position(node: CommentedMap, key: Any) -> tuple[int, int]:
    """0-based; keys merged in with `<<: *anchor` have no position of their own, so they get the map's."""
    found = (node.lc.data or {}).get(key)
    return (found[0], found[1]) if found else (node.lc.line or 0, node.lc.col or 0)


def _scalar(node: Any) -> Any:
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    return str(getattr(node, "value", node))
