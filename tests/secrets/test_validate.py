"""Validation without a key: plaintext under secrets/ and references, at FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path

from shipyard.secrets.files import write_secrets
from shipyard.secrets.validate import file_problems, reference_problems, secret_files
from shipyard.spec.yamlfile import Position
from tests.secrets.conftest import NOW, Keyring


def test_a_plaintext_value_beside_encrypted_ones_is_reported_where_it_is(tmp_path: Path, keyring: Keyring) -> None:
    write_secrets(tmp_path, "prod", {"payments": {"api_key": "x"}}, keyring.identities, NOW)
    path = tmp_path / "secrets" / "prod.yaml"
    path.write_text(path.read_text().replace("payments:\n", "payments:\n    leaked: hunter2\n", 1))
    problems, tree = file_problems(tmp_path, "secrets/prod.yaml")
    assert tree is None
    assert [str(p) for p in problems] == ["secrets/prod.yaml:2:5: error: payments.leaked: plaintext value in a "
                                          "secrets file (never commit a secret in clear); encrypt it with "
                                          "`shipyard secrets set ENV KEY` or `sops encrypt --in-place`"]


def test_a_file_without_a_sops_block_is_plaintext(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "dev.yml").write_text("token: abc\n")
    assert secret_files(tmp_path) == ["secrets/dev.yml"]
    assert "plaintext secrets file" in str(file_problems(tmp_path, "secrets/dev.yml")[0][0])


def test_references_must_name_a_value(tmp_path: Path, keyring: Keyring) -> None:
    write_secrets(tmp_path, "prod", {"payments": {"api_key": "x"}}, keyring.identities, NOW)
    where = Position("services/payments.yaml", 7, 9)
    found = reference_problems(tmp_path, "prod", [("payments.api_key", where, "env.A.secret"),
                                                  ("payments", where, "env.B.secret"),
                                                  ("nope", where, "env.C.secret")])
    assert [p.field for p in found] == ["env.B.secret", "env.C.secret"]
    assert "is a mapping" in found[0].message and "keys: payments.api_key" in found[1].message
    assert "no secrets/staging.yaml" in reference_problems(tmp_path, "staging", [("a", where, "env.A.secret")])[0].message
