"""The SOPS format against the real `sops`: its files decrypt here, ours decrypt there, tampering is caught."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from shipyard.secrets import sopsfile
from shipyard.secrets.errors import SecretsError
from shipyard.secrets.files import read_secrets, set_value, write_secrets
from tests.secrets.conftest import NOW, Keyring, make_keyring

PLAIN = {
    "payments": {"api_key": "sk_live_51Hx-very-secret", "webhook": "whsec_ü/+=:,"},
    "port": 5432, "ratio": 0.25, "big": 1.0e20, "enabled": True, "off": False, "empty": "",
    "list": ["a", 2, {"nested": "n"}], "nothing": None,
}


def _yaml(text: str):  # type: ignore[no-untyped-def]
    return YAML(typ="safe", pure=True).load(text)


def _dump(data: object, path: Path) -> None:
    with path.open("w") as handle:
        YAML().dump(data, handle)


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "secrets").mkdir(parents=True)
    return root


def test_a_file_encrypted_by_sops_decrypts_here(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path)
    plain = root / "secrets" / "prod.yaml"
    _dump(PLAIN, plain)
    keyring.sops("encrypt", "--age", keyring.public, "--in-place", "secrets/prod.yaml", cwd=root)
    assert "sk_live" not in plain.read_text() and "ENC[AES256_GCM," in plain.read_text()

    assert read_secrets(root, "prod", keyring.identities) == PLAIN


def test_a_file_written_here_decrypts_with_sops(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path)
    write_secrets(root, "prod", PLAIN, keyring.identities, NOW)
    text = (root / "secrets" / "prod.yaml").read_text()
    assert "sk_live" not in text and "whsec" not in text
    encrypted = _yaml(text)
    assert encrypted["sops"]["age"][0]["recipient"] == keyring.public
    assert encrypted["sops"]["lastmodified"] == "2026-11-26T03:00:00Z"
    assert re.fullmatch(r"ENC\[AES256_GCM,data:.+,iv:.+,tag:.+,type:int\]", encrypted["port"])

    decrypted = keyring.sops("decrypt", "secrets/prod.yaml", cwd=root).stdout
    assert _yaml(decrypted) == PLAIN


def test_set_and_edit_keep_a_file_sops_can_read_and_sops_edits_stay_readable(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path)
    set_value(root, "prod", "payments.api_key", "first", keyring.identities, NOW)
    set_value(root, "prod", "payments.api_key", "second", keyring.identities, NOW)
    set_value(root, "prod", "db.password", "pw", keyring.identities, NOW)
    assert _yaml(keyring.sops("decrypt", "secrets/prod.yaml", cwd=root).stdout) == \
        {"payments": {"api_key": "second"}, "db": {"password": "pw"}}
    keyring.sops("set", "secrets/prod.yaml", '["payments"]["api_key"]', '"third"', cwd=root)
    assert read_secrets(root, "prod", keyring.identities)["payments"]["api_key"] == "third"


@pytest.mark.parametrize("edit", ["value", "mac", "key"])
def test_a_tampered_file_is_rejected_by_both(tmp_path: Path, keyring: Keyring, edit: str) -> None:
    root = _project(tmp_path)
    write_secrets(root, "prod", {"a": "one", "b": "two"}, keyring.identities, NOW)
    path = root / "secrets" / "prod.yaml"
    data = _yaml(path.read_text())
    if edit == "value":     # swap two values: each decrypts alone only under its own key path
        data["a"], data["b"] = data["b"], data["a"]
    elif edit == "mac":     # a value removed, so the MAC no longer covers what is there
        del data["b"]
    else:                   # a plaintext value slipped in beside the encrypted ones
        data["c"] = "plain"
    _dump(data, path)

    with pytest.raises(SecretsError, match=r"secrets/prod.yaml: .*(MAC mismatch|does not decrypt|not an ENC)"):
        read_secrets(root, "prod", keyring.identities)
    assert keyring.sops("decrypt", "secrets/prod.yaml", cwd=root, check=False).returncode != 0


def test_a_missing_or_wrong_key_is_a_clear_error(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path)
    write_secrets(root, "prod", {"a": "one"}, keyring.identities, NOW)
    stranger = make_keyring(tmp_path / "stranger")
    with pytest.raises(SecretsError, match=rf"none of its age recipients \({keyring.public}\) matches our key"):
        read_secrets(root, "prod", stranger.identities)
    with pytest.raises(SecretsError, match="no secrets file secrets/staging.yaml"):
        read_secrets(root, "staging", keyring.identities)


def test_rotation_re_encrypts_for_the_new_recipients_only(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path)
    write_secrets(root, "prod", {"a": "one"}, keyring.identities, NOW)
    newcomer = make_keyring(tmp_path / "newcomer")
    write_secrets(root, "prod", {"a": "one"}, keyring.identities, NOW, recipients=[newcomer.public])
    assert newcomer.sops("decrypt", "secrets/prod.yaml", cwd=root).stdout.strip() == "a: one"
    assert keyring.sops("decrypt", "secrets/prod.yaml", cwd=root, check=False).returncode != 0


def test_unencrypted_suffix_is_honoured_and_covered_by_the_mac(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path)
    path = root / "secrets" / "prod.yaml"
    path.write_text("token: abc\nregion_unencrypted: eu\n")
    keyring.sops("encrypt", "--age", keyring.public, "--in-place", "secrets/prod.yaml", cwd=root)
    assert "region_unencrypted: eu" in path.read_text()
    assert read_secrets(root, "prod", keyring.identities) == {"token": "abc", "region_unencrypted": "eu"}
    path.write_text(path.read_text().replace("region_unencrypted: eu", "region_unencrypted: us"))
    with pytest.raises(SecretsError, match="MAC mismatch"):
        read_secrets(root, "prod", keyring.identities)


def test_go_float_formatting_matches_strconv() -> None:
    assert [sopsfile.to_bytes(v) for v in (1.0, 0.25, 1e20, -3.5e-7, 12345.678)] == \
        [b"1", b"0.25", b"100000000000000000000", b"-0.00000035", b"12345.678"]


def test_an_unchanged_value_keeps_its_ciphertext_when_another_changes(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path)
    set_value(root, "prod", "a", "one", keyring.identities, NOW)
    set_value(root, "prod", "b", "two", keyring.identities, NOW)
    before = _yaml((root / "secrets" / "prod.yaml").read_text())
    set_value(root, "prod", "b", "three", keyring.identities, NOW)
    after = _yaml((root / "secrets" / "prod.yaml").read_text())
    assert after["a"] == before["a"] and after["b"] != before["b"]
