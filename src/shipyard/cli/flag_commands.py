"""`shipyard flags …`: list the environment's feature flags and evaluate one as OFREP does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import httpx

from shipyard.cli.client import STATE_DIR_OPTION, Client, resolve_state_dir
from shipyard.cli.output import OUTPUT_OPTION, emit, table
from shipyard.errors import ControlPlaneError


@click.group()
def flags() -> None:
    """Feature flags of the environment (flagd format in git, served over OFREP)."""


@flags.command("list", epilog="""\b
Examples:
  shipyard flags list
  shipyard flags list -o json | jq '.[] | select(.state == "DISABLED") | .key'
""")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def list_flags(state_dir: Path | None, output: str) -> None:
    """List the flags the environment serves, with their state, type, default variant and variants."""
    status = Client(resolve_state_dir(state_dir)).request("GET", "/status")
    entries: list[dict[str, Any]] = status.get("flags") or []
    if output != "table":
        emit(entries, output)
        return
    table(["key", "state", "type", "default", "variants", "targeting"],
          [(f["key"], f["state"], f["type"], f["defaultVariant"], ",".join(f["variants"]),
            "yes" if f["targeting"] else "no") for f in entries],
          title=f"OFREP {status.get('ofrep') or '-'}")


def _context(values: tuple[str, ...]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for item in values:
        name, separator, raw = item.partition("=")
        if not separator or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--context")
        if name == "targetingKey":
            context[name] = raw  # always text, whatever it looks like
            continue
        try:
            context[name] = json.loads(raw)
        except ValueError:
            context[name] = raw
    return context


@flags.command("eval", epilog="""\b
Examples:
  shipyard flags eval recommendations --context targetingKey=u1 --context email=a@example.com
  shipyard flags eval api-version --context targetingKey=u1 --context appVersion=2.1.0 -o json
Values are JSON when they parse as JSON (30, true, {"a":1}), text otherwise; quote text that looks
like JSON: --context 'zip="01234"'. The answer comes from the environment's OFREP listener, so it is
exactly what an application gets.
""")
@click.argument("key")
@click.option("--context", "-c", "contexts", multiple=True, metavar="NAME=VALUE",
              help="An attribute of the evaluation context (repeatable); targetingKey=… sets the targeting key.")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def eval_flag(key: str, contexts: tuple[str, ...], state_dir: Path | None, output: str) -> None:
    """Evaluate flag KEY for a context, as the environment's OFREP listener answers it."""
    context = _context(contexts)
    status = Client(resolve_state_dir(state_dir)).request("GET", "/status")
    ofrep = status.get("ofrep")
    if not ofrep:
        raise ControlPlaneError("this control plane serves no flags (no OFREP address in its status)")
    try:
        response = httpx.post(f"{ofrep}/ofrep/v1/evaluate/flags/{key}", json={"context": context}, timeout=10)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ControlPlaneError(f"the OFREP listener {ofrep} did not answer: {exc}") from exc
    if "errorCode" in body:
        raise ControlPlaneError(f"{body['errorCode']}: {body.get('errorDetails', '')}")
    if output != "table":
        emit(body, output)
        return
    value = json.dumps(body["value"]) if "value" in body else "(caller's default)"
    table(["key", "value", "variant", "reason"], [(key, value, body.get("variant"), body.get("reason"))])


COMMANDS = [flags]
