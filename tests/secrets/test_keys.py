"""The environment's age key: where it is, its permissions, and messages that never quote it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.secrets.errors import SecretsError
from shipyard.secrets.keys import KEY_FILE_ENV, generate_key_file, key_file_path, load_identities
from tests.secrets.conftest import NOW


def test_the_key_is_0600_in_age_keygen_format_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "state" / "age.key"
    public = generate_key_file(path, NOW)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    lines = path.read_text().splitlines()
    assert lines[0] == "# created: 2026-11-26T03:00:00Z" and lines[1] == f"# public key: {public}"
    assert lines[2].startswith("AGE-SECRET-KEY-1")
    with pytest.raises(SecretsError, match="already exists"):
        generate_key_file(path, NOW)


def test_a_key_readable_by_others_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "age.key"
    generate_key_file(path, NOW)
    os.chmod(path, 0o644)
    with pytest.raises(SecretsError, match="readable by others .*chmod 600"):
        load_identities(path)
    with pytest.raises(SecretsError, match="no age key at .*shipyard secrets keygen"):
        load_identities(tmp_path / "absent.key")


def test_a_bad_line_is_named_by_number_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "age.key"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(descriptor, b"# comment\nAGE-SECRET-KEY-1NOTAKEY\n")
    os.close(descriptor)
    with pytest.raises(SecretsError) as caught:
        load_identities(path)
    assert "line 2" in str(caught.value) and "NOTAKEY" not in str(caught.value)


def test_the_key_file_comes_from_the_environment_else_the_state_dir(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    assert key_file_path(tmp_path) == tmp_path / "age.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "elsewhere.key"))
    assert key_file_path(tmp_path) == tmp_path / "elsewhere.key"
