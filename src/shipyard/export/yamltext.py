"""Deterministic YAML text for exported objects: fixed key order, no line wrapping, optional `$imagepolicy` comments."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096           # never fold a long string: the bytes must not depend on a line width
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def with_comments(mapping: dict[str, Any], comments: dict[str, str]) -> CommentedMap:
    """A mapping whose `key: value` lines end with the given comments (e.g. Flux setter markers)."""
    result = CommentedMap(mapping)
    for key, comment in comments.items():
        result.yaml_add_eol_comment(comment, key)
    return result


def dump_documents(documents: list[Any]) -> str:
    yaml = _yaml()
    out = io.StringIO()
    for index, document in enumerate(documents):
        if index:
            out.write("---\n")
        yaml.dump(document, out)
    return out.getvalue()


def load_documents(text: str) -> list[Any]:
    return [doc for doc in YAML(typ="safe").load_all(text) if doc is not None]
