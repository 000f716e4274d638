"""Comments of a SOPS YAML file: found, decrypted and put back, encrypted as `sops` does.

`sops` encrypts each comment line like a value: `#ENC[AES256_GCM,…,type:comment]`, the text after `#`
as plaintext, the path of the mapping that holds it (`payments:`, `:` at the top) as additional data,
and leaves comments out of the MAC. It writes every comment on a line of its own, before the key it
belongs to (an inline `key: v # c` moves above its key). Shipyard keeps that model: a comment is
anchored to the next key (its path and which occurrence of that path) or to the end of the document,
and is written back before that key, at its indentation, encrypted for where it now is.

Hand-written because no maintained library speaks this part of the format; lines are found with the
YAML composer's node positions (never a regex over the text), so a `#` inside a block or quoted
scalar is never taken for a comment.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Callable, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Anchor = Optional[tuple[tuple[str, ...], int]]  # (key path, occurrence) of the key a comment precedes; None: the end
IvStash = dict[tuple[str, bytes], bytes]
_PREFIX, _SUFFIX = "ENC[AES256_GCM,data:", ",type:comment]"


@dataclass(frozen=True)
class Comment:
    anchor: Anchor
    text: str  # what follows `#` (plaintext once decrypted)


@dataclass(frozen=True)
class _Key:
    path: tuple[str, ...]
    occurrence: int
    line: int
    column: int


def find(text: str) -> list[Comment]:
    """Every comment of TEXT (standalone or inline), anchored; their text as written (maybe `ENC[…]`)."""
    try:
        root = YAML().compose(text)
    except YAMLError:
        return []
    keys: list[_Key] = []
    inside: set[int] = set()   # lines that belong to a multi-line scalar
    inline: dict[int, str] = {}  # line → an inline comment after a value
    lines = text.splitlines()
    _visit(root, (), keys, inside, inline, lines, {})
    keys.sort(key=lambda k: k.line)
    found: list[Comment] = []
    pending: list[str] = []
    key_lines = {k.line: k for k in keys}
    for number, line in enumerate(lines):
        if number in key_lines:
            key = key_lines[number]
            if number in inline:
                pending.append(inline[number])
            found += [Comment((key.path, key.occurrence), c) for c in pending]
            pending = []
        elif number not in inside and line.lstrip().startswith("#"):
            pending.append(line.lstrip()[1:])
    return found + [Comment(None, c) for c in pending]


def place(text: str, comments: list[Comment], seal: Callable[[str, str], str]) -> str:
    """TEXT with each comment on its own line before its key (`seal(comment, aad)` gives what follows `#`)."""
    if not comments:
        return text
    where = {(k.path, k.occurrence): k for k in _keys(text)}
    lines = text.splitlines()
    before: dict[int, list[str]] = {}
    tail: list[str] = []
    for comment in comments:
        key = where.get(comment.anchor) if comment.anchor is not None else None
        if key is None:  # its key is gone (or it closed the file): it goes to the end, at the top level
            tail.append("#" + seal(comment.text, ":"))
        else:
            before.setdefault(key.line, []).append(" " * key.column + "#" + seal(comment.text, _aad(key.path[:-1])))
    out: list[str] = []
    for number, line in enumerate(lines):
        out += before.get(number, [])
        out.append(line)
    return "\n".join(out + tail) + "\n"


def decrypt(comments: list[Comment], key: bytes, text: str, ivs: IvStash | None = None) -> list[Comment]:
    """Decrypted comments; one that does not decrypt under any path of the file is kept as written
    (sops does the same: an older file's comments may be in clear)."""
    keys = _keys(text)
    candidates = [":"] + sorted({_aad(k.path[:-1]) for k in keys} | {_aad(k.path) for k in keys})
    out = []
    for comment in comments:
        plain = comment.text
        if comment.text.startswith(_PREFIX) and comment.text.endswith(_SUFFIX):
            for aad in candidates:
                opened = _open(comment.text, key, aad)
                if opened is not None:
                    plain = opened[0]
                    if ivs is not None:
                        ivs[(aad, plain.encode())] = opened[1]
                    break
        out.append(Comment(comment.anchor, plain))
    return out


def sealer(key: bytes, ivs: IvStash | None = None) -> Callable[[str, str], str]:
    """`seal` for `place`: encrypt a comment as sops does (an unchanged one keeps its ciphertext)."""
    def seal(text: str, aad: str) -> str:
        if text == "":
            return ""  # as sops: an empty comment stays empty
        iv = (ivs or {}).get((aad, text.encode())) or os.urandom(32)
        sealed = AESGCM(key).encrypt(iv, text.encode(), aad.encode())
        b64 = base64.standard_b64encode
        return (f"{_PREFIX}{b64(sealed[:-16]).decode()},iv:{b64(iv).decode()},tag:{b64(sealed[-16:]).decode()}"
                f"{_SUFFIX}")
    return seal


def clear(text: str, aad: str) -> str:
    """`seal` for `place` in a decrypted copy (the editor's temporary file)."""
    return text


def _open(text: str, key: bytes, aad: str) -> tuple[str, bytes] | None:
    try:
        data, iv, tag = (part.split(":", 1)[1] for part in text[len("ENC[AES256_GCM,"):-len(_SUFFIX)].split(","))
        raw_iv = base64.standard_b64decode(iv)
        plain = AESGCM(key).decrypt(raw_iv, base64.standard_b64decode(data) + base64.standard_b64decode(tag),
                                    aad.encode())
        return plain.decode("utf-8", "replace"), raw_iv
    except (ValueError, IndexError, InvalidTag):
        return None


def _keys(text: str) -> list[_Key]:
    keys: list[_Key] = []
    try:
        root = YAML().compose(text)
    except YAMLError:
        return keys
    if root is not None:
        _visit(root, (), keys, set(), {}, text.splitlines(), {})
    return keys


def _visit(node: Node | None, path: tuple[str, ...], keys: list[_Key], inside: set[int], inline: dict[int, str],
           lines: list[str], seen: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, MappingNode):
        for key_node, value in node.value:
            child = (*path, str(key_node.value))
            seen[child] = seen.get(child, -1) + 1
            keys.append(_Key(child, seen[child], key_node.start_mark.line, key_node.start_mark.column))
            _visit(value, child, keys, inside, inline, lines, seen)
    elif isinstance(node, SequenceNode):  # items share their parent's path, as in sops
        for item in node.value:
            _visit(item, path, keys, inside, inline, lines, seen)
    elif isinstance(node, ScalarNode):
        start, end = node.start_mark.line, node.end_mark.line
        inside.update(range(start + 1, end + 1) if node.style in ("|", ">") else range(start + 1, end + (end > start)))
        if end == start and start < len(lines):
            rest = lines[start][node.end_mark.column:].strip()
            if rest.startswith("#"):
                inline[start] = rest[1:]


def _aad(path: tuple[str, ...]) -> str:
    return ":".join(path) + ":"
