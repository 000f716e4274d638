"""Commands about who may use the API: `token create | list | revoke` and `audit`."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import click

from shipyard.api.tokens import SCOPES, parse_duration
from shipyard.cli.client import STATE_DIR_OPTION, Client, resolve_state_dir
from shipyard.cli.output import OUTPUT_OPTION, emit, info, table


@click.group(epilog="""\b
Scopes: read (see everything but secret values), deploy (also promote, approve, abort, retry,
undo, apply, sync, scale, suspend, resume), admin (also tokens and `down`).

\b
Examples:
  shipyard token create ci --scope deploy --expires 30d
  shipyard token list
  shipyard token revoke ci
""")
def token() -> None:
    """Create, list and revoke the API's scoped tokens (admin only)."""


def _expires(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@token.command(epilog="""\b
The token is printed once, on stdout; the control plane keeps only its SHA-256 digest.
Use it as `Authorization: Bearer TOKEN`, as SHIPYARD_TOKEN for the CLI, or to sign in at /ui.

\b
Examples:
  shipyard token create dashboard --scope read
  shipyard token create ci --scope deploy --expires 30d -o json
""")
@click.argument("name")
@click.option("--scope", type=click.Choice(SCOPES), required=True, help="What the token may do.")
@click.option("--expires", metavar="DURATION", callback=_expires,
              help="Lifetime such as 30d, 12h, 2w (default: until revoked).")
@STATE_DIR_OPTION
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
def create(name: str, scope: str, expires: str | None, state_dir: Path | None, output: str) -> None:
    """Create a token NAME with a scope and print it (the only time it is shown)."""
    body = {"name": name, "scope": scope, **({"expires": expires} if expires else {})}
    created = Client(resolve_state_dir(state_dir)).request("POST", "/tokens", json=body)
    if output == "json":
        emit(created, "json")
        return
    click.echo(created["token"])
    until = f", expires {_when(created['expires_at'])}" if created.get("expires_at") else ""
    info(f"token {name!r} ({scope}{until}) created: store it now, it is not shown again")


@token.command(name="list", epilog="""\b
Examples:
  shipyard token list
  shipyard token list -o json
""")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def list_(state_dir: Path | None, output: str) -> None:
    """List the tokens: name, scope, state, created, expires (never the secrets)."""
    tokens = Client(resolve_state_dir(state_dir)).request("GET", "/tokens")
    if output != "table":
        emit(tokens, output)
        return
    table(["name", "scope", "state", "created", "expires"],
          [(t["name"], t["scope"], t["state"], _when(t["created_at"]), _when(t["expires_at"])) for t in tokens])


@token.command(epilog="""\b
A revoked token is refused at once, also by dashboard sessions it signed in.

\b
Examples:
  shipyard token revoke ci
""")
@click.argument("name")
@STATE_DIR_OPTION
def revoke(name: str, state_dir: Path | None) -> None:
    """Revoke the token NAME."""
    Client(resolve_state_dir(state_dir)).request("POST", f"/tokens/{name}/revoke")
    info(f"token {name!r} revoked")


@click.command(epilog="""\b
WHO is the token's name: `local` for the CLI over the Unix socket, `admin` for the state dir's
own token, `-` for a request without a valid token. OUTCOME is ok, failed, denied (403) or
unauthorized (401).

\b
Examples:
  shipyard audit
  shipyard audit --limit 500 -o json | jq '.[] | select(.outcome == "denied")'
""")
@STATE_DIR_OPTION
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="How many of the newest entries.")
@OUTPUT_OPTION
def audit(state_dir: Path | None, limit: int, output: str) -> None:
    """List who did what: every mutating API request, from the CLI, the API or the dashboard, oldest first."""
    entries = Client(resolve_state_dir(state_dir)).request("GET", f"/audit?limit={limit}")
    if output != "table":
        emit(entries, output)
        return
    table(["time", "who", "action", "target", "outcome", "status"],
          [(_when(e["time"]), e["who"], e["action"], e["target"] or None, e["outcome"], e["status"]) for e in entries])


def _when(stamp: Any) -> str | None:
    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


COMMANDS = [token, audit]
