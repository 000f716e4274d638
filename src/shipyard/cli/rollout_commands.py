"""`shipyard rollout …`: follow and inspect the rollouts of a service."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import click

from shipyard.cli.client import STATE_DIR_OPTION, Client, resolve_state_dir
from shipyard.cli.output import OUTPUT_OPTION, emit, info, table


@click.group()
def rollout() -> None:
    """Follow and inspect rollouts."""


@rollout.command(epilog="""\b
Examples:
  shipyard apply && shipyard rollout status catalog     # blocks until the rollout ends; exit 1 if it failed
  shipyard rollout status catalog --no-wait -o json
""")
@click.argument("service")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Block until the rollout ends.")
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Give up waiting after this many seconds.")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def status(service: str, wait: bool, timeout: float, state_dir: Path | None, output: str) -> None:
    """Follow the rollout of the latest applied revision of SERVICE (exit 0 complete, 1 failed)."""
    client = Client(resolve_state_dir(state_dir))
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        entry = _service(client, service)
        rollout_record, state = entry.get("rollout"), _state(entry)
        line = _describe(entry, rollout_record, state)
        if line != last and output == "table":
            click.echo(line)
            last = line
        if not wait or state in ("complete", "failed"):
            break
        if time.monotonic() > deadline:
            info(f"still {state} after {timeout:g}s")
            raise click.exceptions.Exit(1)
        time.sleep(0.2)
    if output != "table":
        emit({"service": service, "state": state, "release": entry["release"], "rollout": rollout_record,
              "ready_replicas": entry["ready_replicas"], "desired_replicas": entry["desired_replicas"],
              "conditions": entry["conditions"]}, output)
    if state == "failed":
        raise click.exceptions.Exit(1)


def _service(client: Client, name: str) -> dict[str, Any]:
    document = client.request("GET", "/status")
    for entry in document["services"]:
        if entry["name"] == name:
            # The service's own conditions (e.g. Schedulable False): why a rollout may be waiting.
            return {**entry, "conditions": [c for c in document.get("conditions", []) if c.get("object") == name
                                            and c["type"] == "Schedulable"]}
    raise click.UsageError(f"no service {name!r} in this environment")


def _state(entry: dict[str, Any]) -> str:
    """The rollout of the *applied* release: until the engine records it, it is still pending."""
    record = entry.get("rollout")
    if record is None or record["target"] != entry["release"]:
        return "pending"
    return str(record["status"])


def _describe(entry: dict[str, Any], record: dict[str, Any] | None, state: str) -> str:
    ready = [i for i in entry["instances"] if i["state"] == "ready" and i["release"] == entry["release"]]
    others = [i for i in entry["instances"] if i["release"] != entry["release"]]
    text = (f"{entry['name']}: {state} — release {entry['release']} (version {entry['version']}): "
            f"{len(ready)}/{entry['desired_replicas']} ready, {len(others)} old instance(s) left")
    if record and record.get("phase") and state != "pending":
        text += f"; {record['strategy']} {record['phase']}, {record['weight']}% of traffic"
        if record.get("failures"):
            text += f", {record['failures']} failed analyses"
        if entry.get("preview"):
            text += f", preview {entry['preview']}"
        if record.get("decisions"):
            last = record["decisions"][-1]
            text += f"\n  last decision: {last.get('reason', '')}"
            checks = [c for c in last.get("checks") or [] if isinstance(c, dict) and c.get("reason")]
            if checks:  # one line per entry: its evidence and how far it is from each decision
                text += "".join(f"\n    {c.get('check')}: {c.get('verdict')} — {c['reason']}" for c in checks)
            elif last.get("summary"):
                text += f"\n    {last['summary']}"
    if record and state not in ("complete", "failed", "pending"):
        if record.get("waiting"):
            text += f"\n  waiting: {record['waiting']}"
        for condition in entry.get("conditions", []):
            text += f"\n  {condition['type']} {condition['status']} {condition['reason']}: {condition['message']}"
    if record and state in ("complete", "failed") and record.get("message"):
        text += f"; {record['message']}"
    return text


@rollout.command(epilog="""\b
Example:
  shipyard rollout history catalog
""")
@click.argument("service")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def history(service: str, state_dir: Path | None, output: str) -> None:
    """List the rollouts of SERVICE, newest first."""
    records = Client(resolve_state_dir(state_dir)).request("GET", f"/rollouts/{service}/history")
    if output != "table":
        emit(records, output)
        return
    table(["started", "release", "version", "digest", "from", "strategy", "status", "message"],
          [(datetime.datetime.fromtimestamp(r["started_at"]).strftime("%Y-%m-%d %H:%M:%S"), r["target"],
            r.get("version"), (r.get("digest") or "local source")[:19], r["previous"], r["strategy"], r["status"],
            r["message"]) for r in records])


@rollout.command(epilog="""\b
Examples:
  shipyard rollout undo catalog                 # back to the release before the current one
  shipyard rollout undo catalog --to 1.4.0      # or a named release: id, digest or version
  shipyard rollout undo catalog && shipyard rollout status catalog

The service keeps running that release until the spec asks for a different one than it does
now (a new commit, a revert); `status` shows the difference as an InSync condition.
""")
@click.argument("service")
@click.option("--to", "to", metavar="RELEASE", help="Release id, digest or version to go back to.")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def undo(service: str, to: str | None, state_dir: Path | None, output: str) -> None:
    """Roll SERVICE back to its previous (or a named) release, with a zero-downtime rolling update."""
    result = Client(resolve_state_dir(state_dir)).request("POST", f"/rollouts/{service}/undo", json={"to": to})
    if output != "table":
        emit(result, output)
        return
    click.echo(f"{service}: rolling back to release {result['release']} (version {result['version']}); "
               f"follow it with `shipyard rollout status {service}`")


@rollout.command(epilog="""\b
Examples:
  shipyard rollout diff catalog            # differences by route and field, noise cancelled
  shipyard rollout diff catalog -o json

A canary with `strategy.canary.parallelRun` copies a share of live requests to a comparator, which
asks the candidate and two live instances; fields differing between the two live answers are noise.
""")
@click.argument("service")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def diff(service: str, state_dir: Path | None, output: str) -> None:
    """Show the parallel run of SERVICE's canary: the candidate's differences from the live release."""
    report = Client(resolve_state_dir(state_dir)).request("GET", f"/rollouts/{service}/diff")
    if output != "table":
        emit(report, output)
        return
    for line in diff_lines(report):
        click.echo(line)


def diff_lines(report: dict[str, Any]) -> list[str]:
    """The parallel-run report as text: a header, one line per (route, field) with examples, the noise."""
    state = "comparing" if report.get("active") else "stopped"
    settings = report.get("settings", {})
    limit = settings.get("maxDifferences")
    lines = [f"{report['service']}: parallel run of {report['release']} ({state}): {report['compared']} request(s) "
             f"compared, {report['differing']} with unexplained differences"
             + (f", maxDifferences {limit}" if limit is not None else "")
             + (f", {report['failed']} not compared (a target did not answer)" if report.get("failed") else "")]
    if not report["differences"]:
        lines.append("  no unexplained difference")
    for entry in report["differences"]:
        lines.append(f"  {entry['route']}  {entry['field']}  {entry['count']}")
        for example in entry["examples"]:
            lines.append(f"      live {json.dumps(example['primary'])} → candidate {json.dumps(example['candidate'])}")
    for route, fields in report.get("noise", {}).items():
        if fields:
            lines.append(f"  noise cancelled on {route}: {', '.join(fields)}")
    return lines


def _command(verb: str, summary: str, examples: str, has_full: bool = False) -> None:
    @click.argument("service")
    @STATE_DIR_OPTION
    @OUTPUT_OPTION
    def command(service: str, state_dir: Path | None, output: str, full: bool = False) -> None:
        record = Client(resolve_state_dir(state_dir)).request("POST", f"/rollouts/{service}/{verb}",
                                                               json={"full": full})
        if output != "table":
            emit(record, output)
            return
        last = record["decisions"][-1]["reason"] if record.get("decisions") else record.get("message", "")
        click.echo(f"{service}: {record['status']}, {record['phase']} — {last}")

    command.__doc__ = summary
    if has_full:
        command = click.option("--full", is_flag=True, help="Skip every remaining step and check.")(command)
    rollout.command(verb, epilog="\b\nExamples:\n" + examples)(command)


_command("promote", "Move SERVICE's canary one step on (or blue-green's switch) without waiting for checks.",
         "  shipyard rollout promote catalog          # next canary step now\n"
         "  shipyard rollout promote catalog --full   # all the way, skipping analysis and gates\n", has_full=True)
_command("approve", "Release a manual gate (`approval: true`) of SERVICE's rollout.",
         "  shipyard rollout approve catalog\n")
_command("abort", "Roll SERVICE's canary or blue-green rollout back now: all traffic to the previous release.",
         "  shipyard rollout abort catalog\n")
_command("retry", "Start a failed (rolled back) canary or blue-green rollout of SERVICE again.",
         "  shipyard rollout retry catalog && shipyard rollout status catalog\n")

COMMANDS = [rollout]
