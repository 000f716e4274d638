"""Comments of secrets files survive Shipyard's rewrites, encrypted as the real `sops` encrypts them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shipyard.secrets import comments
from shipyard.secrets.files import read_comments, read_secrets, set_value, write_secrets
from tests.controlplane import SHIPYARD
from tests.secrets.conftest import NOW, Keyring, make_keyring

PLAIN = """\
# payment provider (live account)
payments:
    # rotated every 90 days
    api_key: sk_live_1 # the live key
    webhook: whsec_2
# the database of orders
db:
    password: hunter2
    script: |
        # not a comment: part of the value
        echo ok
"""


def _project(tmp_path: Path, keyring: Keyring) -> Path:
    root = tmp_path / "project"
    (root / "secrets").mkdir(parents=True)
    (root / "secrets" / "prod.yaml").write_text(PLAIN)
    keyring.sops("encrypt", "--age", keyring.public, "--in-place", "secrets/prod.yaml", cwd=root)
    return root


def _comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def test_set_keeps_the_comments_sops_wrote_encrypted_and_sops_reads_them_back(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path, keyring)
    by_sops = keyring.sops("decrypt", "secrets/prod.yaml", cwd=root).stdout

    set_value(root, "prod", "payments.webhook", "whsec_3", keyring.identities, NOW)
    text = (root / "secrets" / "prod.yaml").read_text()
    assert "rotated" not in text and "live" not in text, "comments stay encrypted in the file"
    assert all(line.startswith("#ENC[AES256_GCM,") for line in _comment_lines(text))

    after = keyring.sops("decrypt", "secrets/prod.yaml", cwd=root)
    assert "Found possibly unencrypted comment" not in after.stderr, "sops decrypts our comments, not tolerates them"
    assert after.stdout == by_sops.replace("whsec_2", "whsec_3"), "the same comments, in the same places"
    assert [c.text for c in read_comments(root, "prod", keyring.identities)] == [
        " payment provider (live account)", " rotated every 90 days", " the live key", " the database of orders"]


def test_edit_writes_new_comments_sops_decrypts_and_rotate_keeps_them(tmp_path: Path, keyring: Keyring) -> None:
    root = _project(tmp_path, keyring)
    key_file = tmp_path / "keys" / "age.key"
    editor = tmp_path / "editor.py"
    editor.write_text("import re, sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\ntext = path.read_text()\n"
                      "assert '# rotated every 90 days' in text, text  # the editor sees them decrypted\n"
                      "path.write_text(re.sub(r'^( *)password:', r'\\1# owner: team orders\\n\\1password:', text, flags=re.M))\n")
    environment = {**os.environ, "EDITOR": f"{sys.executable} {editor}", "SHIPYARD_AGE_KEY_FILE": str(key_file)}
    edited = subprocess.run([*SHIPYARD, "secrets", "edit", "prod", "--project", str(root)], env=environment,
                            capture_output=True, text=True, timeout=60)
    assert edited.returncode == 0, edited.stderr
    assert "owner" not in (root / "secrets" / "prod.yaml").read_text()
    decrypted = keyring.sops("decrypt", "secrets/prod.yaml", cwd=root).stdout
    assert "    # owner: team orders\n    password: hunter2" in decrypted
    assert "# payment provider (live account)\npayments:" in decrypted

    newcomer = make_keyring(tmp_path / "new")
    write_secrets(root, "prod", read_secrets(root, "prod", keyring.identities), keyring.identities, NOW,
                  recipients=[newcomer.public], rotate=True)
    assert newcomer.sops("decrypt", "secrets/prod.yaml", cwd=root).stdout == decrypted


def test_a_hash_inside_a_block_scalar_is_not_a_comment() -> None:
    found = comments.find(PLAIN)
    assert [(c.anchor, c.text) for c in found] == [
        ((("payments",), 0), " payment provider (live account)"),
        ((("payments", "api_key"), 0), " rotated every 90 days"),
        ((("payments", "api_key"), 0), " the live key"),
        ((("db",), 0), " the database of orders")]
    placed = comments.place("a: 1\nb:\n    c: 2\n", [comments.Comment((("b", "c"), 0), " x"),
                                                   comments.Comment((("gone",), 0), " y")], comments.clear)
    assert placed == "a: 1\nb:\n    # x\n    c: 2\n# y\n"
