"""Editing an environment overlay the way a person would: one value changed, every comment and layout kept.

ruamel.yaml's round trip keeps comments but re-indents sequences and flow mappings, so a promotion
commit would show unrelated lines. Instead the value's own position (from ruamel's line/column data)
is edited in the text, and the result is parsed again to prove it says what was meant. Only when the
overlay has no block mapping for the service (absent, `null`, `{}` or flow style) is the document
round-tripped.
"""

from __future__ import annotations

import io
import re

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from shipyard.errors import ShipyardError

_SCALAR = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#,}\]]+)""")


class OverlayError(ShipyardError):
    """An overlay could not be edited."""


def set_version(text: str, service: str, version: str) -> str:
    """`text` with `services.<service>.version` set to `version` (quoted, so `1.10` stays a string)."""
    yaml = YAML(typ="rt")
    data = yaml.load(text)
    if not isinstance(data, CommentedMap) or not isinstance(data.get("services"), (CommentedMap, type(None))):
        raise OverlayError("the environment file has no `services:` mapping")
    quoted = '"' + version.replace("\\", "\\\\").replace('"', '\\"') + '"'
    entry = (data.get("services") or {}).get(service)
    lines = text.splitlines(keepends=True)
    if isinstance(entry, CommentedMap) and entry and not entry.fa.flow_style():
        if "version" in entry:
            line, column = entry.lc.value("version")
            token = _SCALAR.match(lines[line], column)
            if token is None:
                raise OverlayError(f"cannot read services.{service}.version at line {line + 1}")
            lines[line] = lines[line][:column] + quoted + lines[line][token.end():]
        else:
            line, column = entry.lc.key(next(iter(entry)))
            lines.insert(line, f"{' ' * column}version: {quoted}\n")
        result = "".join(lines)
    else:
        result = _round_trip(yaml, data, service, version)
    check = YAML(typ="safe").load(result)
    if (check.get("services") or {}).get(service, {}).get("version") != version:
        raise OverlayError(f"editing services.{service}.version did not give {version!r}")
    return result


def _round_trip(yaml: YAML, data: CommentedMap, service: str, version: str) -> str:
    if data.get("services") is None:
        data["services"] = CommentedMap()
    entry = data["services"].get(service)
    if not isinstance(entry, CommentedMap):
        entry = CommentedMap()
        data["services"][service] = entry
    entry["version"] = version
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def declared_version(text: str, service: str) -> str | None:
    """The version an overlay's text names for SERVICE, if it names one."""
    try:
        data = YAML(typ="safe").load(text) or {}
    except Exception:  # noqa: BLE001 - an unreadable overlay names nothing; the edit itself will say why
        return None
    entry = (data.get("services") or {}).get(service) if isinstance(data, dict) else None
    version = entry.get("version") if isinstance(entry, dict) else None
    return str(version) if version is not None else None
