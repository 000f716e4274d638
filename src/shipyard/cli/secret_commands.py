"""`shipyard secrets keygen|set|edit|rotate|list`: an environment's SOPS-encrypted secrets file, from the command line.

Values come in on stdin or through `$EDITOR`, never on the command line (argv is visible to every user
of the machine); nothing here prints a value.
"""

from __future__ import annotations

import datetime
import io
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from shipyard.cli.client import STATE_DIR_OPTION, resolve_state_dir
from shipyard.cli.output import emit, info, table
from shipyard.secrets.errors import SecretsError
from shipyard.secrets import comments
from shipyard.secrets.files import read_document, read_secrets, relative_name, secrets_file, set_value, write_secrets
from shipyard.secrets.files import read_comments
from shipyard.secrets.keys import generate_key_file, key_file_path, load_identities
from shipyard.secrets.sopsfile import walk_leaves

PROJECT_OPTION = click.option("-C", "--project", "project", type=click.Path(file_okay=False, path_type=Path),
                              default=".", show_default=True, help="The config repository.")
RECIPIENT_OPTION = click.option("-r", "--recipient", "recipients", multiple=True, metavar="AGE1...",
                                help="An age public key to encrypt for (repeat for several).")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _identities(state_dir: Path | None, environment: str) -> Any:
    return load_identities(key_file_path(_state(state_dir, environment)))


def _state(state_dir: Path | None, environment: str) -> Path | None:
    if os.environ.get("SHIPYARD_AGE_KEY_FILE"):
        return state_dir
    return resolve_state_dir(state_dir, environment)


@click.group(epilog="""\b
The private key of an environment lives outside git: $SHIPYARD_AGE_KEY_FILE, else <state dir>/age.key
(0600). The files are sops files: `SOPS_AGE_KEY_FILE=<that key> sops decrypt secrets/prod.yaml` works too.

\b
Examples:
  shipyard secrets keygen --env prod
  printf %s "$API_KEY" | shipyard secrets set prod payments.api_key
  shipyard secrets edit prod
  shipyard secrets rotate prod -r age1... -r age1...
""")
def secrets() -> None:
    """Manage the encrypted secrets of an environment (secrets/ENV.yaml, SOPS with age)."""


@secrets.command(epilog="""\b
Examples:
  shipyard secrets keygen --env prod                 # writes .shipyard/prod/age.key
  SHIPYARD_AGE_KEY_FILE=~/keys/prod.key shipyard secrets keygen
""")
@click.option("--env", "environment", metavar="NAME", help="The environment whose state dir holds the key.")
@STATE_DIR_OPTION
def keygen(environment: str | None, state_dir: Path | None) -> None:
    """Create an environment's age key (0600) and print its public key, the recipient to encrypt for."""
    if not os.environ.get("SHIPYARD_AGE_KEY_FILE") and state_dir is None and environment is None:
        raise click.UsageError("give --env NAME or --state-dir DIR (or set SHIPYARD_AGE_KEY_FILE)")
    path = key_file_path(_state(state_dir, environment or ""))
    public = generate_key_file(path, _now())
    click.echo(public)
    info(f"wrote {path} (keep it out of git; back it up: without it the secrets cannot be decrypted)")


@secrets.command(name="set", epilog="""\b
Examples:
  printf %s "$API_KEY" | shipyard secrets set prod payments.api_key
  shipyard secrets set prod db.password < password.txt
  shipyard secrets set dev payments.api_key -r age1... < key.txt   # a new file, for this recipient
""")
@click.argument("environment", metavar="ENV")
@click.argument("key", metavar="KEY")
@PROJECT_OPTION
@RECIPIENT_OPTION
@STATE_DIR_OPTION
def set_command(environment: str, key: str, project: Path, recipients: tuple[str, ...], state_dir: Path | None) -> None:
    """Set KEY (a dotted path, e.g. payments.api_key) in secrets/ENV.yaml to the value read from stdin."""
    if sys.stdin.isatty():
        info("reading the value from stdin (end with Ctrl-D)")
    value = sys.stdin.read()
    value = value[:-1] if value.endswith("\n") else value
    if not value:
        raise SecretsError(f"no value on stdin for {key}; pipe it in, e.g. `printf %s \"$VALUE\" | shipyard secrets set {environment} {key}`")
    set_value(project, environment, key, value, _identities(state_dir, environment), _now(), list(recipients) or None)
    info(f"{relative_name(environment)}: set {key} (commit the file to deploy it)")


@secrets.command(epilog="""\b
Examples:
  shipyard secrets edit prod
  EDITOR="code --wait" shipyard secrets edit staging -C deploy/
""")
@click.argument("environment", metavar="ENV")
@PROJECT_OPTION
@STATE_DIR_OPTION
def edit(environment: str, project: Path, state_dir: Path | None) -> None:
    """Decrypt secrets/ENV.yaml to a private temporary file, open $EDITOR on it, and encrypt the result."""
    identities = _identities(state_dir, environment)
    exists = secrets_file(project, environment).exists()
    plain = read_secrets(project, environment, identities) if exists else {}
    notes = read_comments(project, environment, identities) if exists else []
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    with tempfile.TemporaryDirectory(prefix="shipyard-secrets-") as scratch:  # 0700
        path = Path(scratch) / f"{environment}.yaml"
        original = comments.place(_to_yaml(plain), notes, comments.clear) if plain or notes else "# key: value\n"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(original)
        try:
            code = subprocess.call([*editor, str(path)])
        except OSError as exc:
            raise SecretsError(f"cannot run the editor {editor[0]!r}: {exc.strerror}; set $EDITOR") from None
        edited = path.read_text(encoding="utf-8")
        path.write_bytes(b"\0" * len(edited.encode()))  # do not leave the plaintext in the freed blocks' page cache
    if code != 0:
        raise SecretsError(f"the editor exited with {code}; {relative_name(environment)} is unchanged")
    if edited == original:
        info(f"{relative_name(environment)}: no changes")
        return
    try:
        tree = YAML(typ="safe", pure=True).load(edited) or {}
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SecretsError(f"the edited file is not valid YAML{where}; {relative_name(environment)} is unchanged") from None
    write_secrets(project, environment, tree, identities, _now(), notes=comments.find(edited))
    info(f"{relative_name(environment)}: encrypted (commit the file to deploy it)")


@secrets.command(epilog="""\b
Examples:
  shipyard secrets rotate prod                       # a new data key, same recipients
  shipyard secrets rotate prod -r age1alice... -r age1ci...
""")
@click.argument("environment", metavar="ENV")
@PROJECT_OPTION
@RECIPIENT_OPTION
@STATE_DIR_OPTION
def rotate(environment: str, project: Path, recipients: tuple[str, ...], state_dir: Path | None) -> None:
    """Re-encrypt secrets/ENV.yaml with a new data key, for the given recipients (default: the current ones)."""
    identities = _identities(state_dir, environment)
    plain = read_secrets(project, environment, identities)
    chosen = write_secrets(project, environment, plain, identities, _now(), list(recipients) or None, rotate=True)
    info(f"{relative_name(environment)}: re-encrypted for {', '.join(chosen)}")


@secrets.command(name="list", epilog="""\b
Examples:
  shipyard secrets list prod
  shipyard secrets list prod -o json
""")
@click.argument("environment", metavar="ENV")
@PROJECT_OPTION
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
def list_command(environment: str, project: Path, output: str) -> None:
    """List the keys of secrets/ENV.yaml and its recipients; never a value, and no key needed."""
    document = read_document(project, environment)
    keys = [".".join(path) for path, _ in walk_leaves(document.tree)]
    data = {"file": relative_name(environment), "keys": keys, "recipients": document.metadata.recipients,
            "lastmodified": document.metadata.lastmodified}
    if output != "table":
        emit(data, output)
        return
    table(["KEY"], [[key] for key in keys], title=f"{data['file']} — recipients: {', '.join(data['recipients'])}")


def _to_yaml(tree: dict[str, Any]) -> str:
    out = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(tree, out)
    return out.getvalue()


COMMANDS = [secrets]
