"""Commands that talk to a running control plane (or its state): apply, down, status, logs, events."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import click

from shipyard.cli.client import STATE_DIR_OPTION, ApiError, Client, resolve_state_dir
from shipyard.cli.output import OUTPUT_OPTION, emit, info, table
from shipyard.spec.units import format_cpu, format_memory_approx
from shipyard.state.control import read_control


def _artifact_text(artifact: dict[str, Any] | None) -> str | None:
    """`catalog@sha256:1a2b3c4d5e6f` for a built image, `local source` for `artifact.path`."""
    if not artifact:
        return None
    if artifact.get("source") == "image":
        return f"{artifact['image']}@{artifact['digest'][:19]}"
    return "local source"


@click.command(epilog="""\b
Examples:
  shipyard apply                        # re-read the project the control plane was started with
  shipyard apply examples/shop --state-dir .shipyard/dev
""")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path), required=False)
@STATE_DIR_OPTION
def apply(directory: Path | None, state_dir: Path | None) -> None:
    """Re-read the project directory and apply it; an invalid project changes nothing."""
    client = Client(resolve_state_dir(state_dir))
    body = {"directory": str(directory.resolve())} if directory else {}
    try:
        result = client.request("POST", "/apply", json=body)
    except ApiError as exc:
        if exc.body.get("problems"):
            for line in exc.body["problems"]:
                click.echo(line, err=True)
            click.echo("the control plane rejected the project; nothing changed", err=True)
            raise click.exceptions.Exit(1) from None
        raise
    info(f"applied revision {result['revision']}")
    for service, release in sorted(result["services"].items()):
        click.echo(f"{service}\t{release}")


@click.command(epilog="""\b
Examples:
  shipyard down
  shipyard down --state-dir .shipyard/prod
""")
@STATE_DIR_OPTION
def down(state_dir: Path | None) -> None:
    """Stop every instance gracefully, then the control plane."""
    state = resolve_state_dir(state_dir)
    client = Client(state)
    if not client.alive():
        _down_offline(state)
        return
    client.request("POST", "/down", timeout=600)
    deadline = time.monotonic() + 10
    while client.pid is not None and client.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    info(f"stopped {state}")


def _down_offline(state: Path) -> None:
    """No control plane runs: adopt what is left and stop it from here."""
    import asyncio

    from shipyard.daemon import ControlPlane, lock_state_dir, machine_capacity

    lock = lock_state_dir(state)
    del lock
    from shipyard.proxy.envoy_router import EnvoyRouter

    router = EnvoyRouter(state / "proxy", 0)
    plane = ControlPlane(state, None, read_control(state)["environment"], machine_capacity(), router)  # type: ignore[index]

    async def stop() -> None:
        plane.reconciler.adopt()
        await plane.take_down()

    asyncio.run(stop())
    info(f"stopped the instances left in {state} (no control plane was running)")


@click.command(epilog="""\b
Examples:
  shipyard status
  shipyard status -o json | jq '.services[].instances[].pid'
""")
@STATE_DIR_OPTION
@OUTPUT_OPTION
def status(state_dir: Path | None, output: str) -> None:
    """Show services, instances, endpoints and conditions of the environment."""
    document = Client(resolve_state_dir(state_dir)).request("GET", "/status")
    if output != "table":
        emit(document, output)
        return
    click.echo(f"environment {document['environment']}  revision {document['revision']}  api {document['api']}"
               + (f"  ingress {document['ingress']}" if document.get("ingress") else "")
               + ("  SUSPENDED" if document.get("suspended") else ""))
    if document.get("source"):
        click.echo(_source_line(document["source"]))
    if document.get("flags"):
        click.echo(f"flags {len(document['flags'])} served over OFREP at {document.get('ofrep')}  "
                   "(shipyard flags list)")
    rows = [(s["name"], s["version"], f"{s['ready_replicas']}/{s['desired_replicas']}", s["endpoint"],
             _rollout_text(s.get("rollout")), _artifact_text(s.get("artifact"))) for s in document["services"]]
    table(["service", "version", "ready", "endpoint", "rollout", "artifact"], rows)
    click.echo()
    table(["instance", "version", "state", "pid", "port", "restarts", "last exit", "sandbox", "memory", "cpu"],
          [_instance_row(i) for s in document["services"] for i in s["instances"]])
    click.echo()
    traffic = [(s["name"], r) for s in document["services"] if s.get("traffic") for r in s["traffic"]["releases"]]
    if traffic:
        window = document["services"][0]["traffic"]["window_s"] if document["services"] else 0
        table([f"traffic (last {window:g}s)", "release", "version", "requests", "req/s", "success", "p50", "p95", "p99"],
              [_traffic_row(name, r) for name, r in traffic])
        click.echo()
    if document.get("capacity"):
        click.echo(_capacity_line(document["capacity"]))
        click.echo()
    table(["condition", "status", "reason", "message"],
          [(c["type"], c["status"], c["reason"], c["message"]) for c in document["conditions"]])


def _capacity_line(capacity: dict[str, Any]) -> str:
    """Machine capacity, what this environment holds and what the others on the machine hold."""
    def amount(held: dict[str, Any]) -> str:
        return f"{format_cpu(held['cpu'])} CPU / {format_memory_approx(held['memory'])}"

    line = (f"capacity {amount(capacity)}; this environment holds {amount(capacity['held'])}; "
            f"free {amount(capacity['free'])}")
    others = "; ".join(f"{o['environment']} ({o['state_dir']}) {amount(o)}" for o in capacity["others"])
    return line + (f"; other environments: {others}" if others else "; no other environment on this machine")


def _traffic_row(service: str, release: dict[str, Any]) -> tuple[Any, ...]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}ms"

    success = release["success_rate"]
    return (service, release["release"], release["version"], _dash(release["requests"]), _dash(release["request_rate"]),
            "-" if success is None else f"{success:.2f}%", ms(release["latency_p50_ms"]),
            ms(release["latency_p95_ms"]), ms(release["latency_p99_ms"]))


def _dash(value: object) -> object:
    return "-" if value is None else value


def _source_line(source: dict[str, Any]) -> str:
    fetched = datetime.datetime.fromtimestamp(source["fetched"]).strftime("%H:%M:%S") if source["fetched"] else "never"
    line = f"source {source['url']} ({source['ref']})  fetched {fetched}  head {(source['head'] or '-')[:12]}"
    if source.get("pending"):
        line += f"  pending {source['pending'][:12]}"
    return line + (f"  last error: {source['last_error']}" if source.get("last_error") else "")


def _rollout_text(rollout: dict[str, Any] | None) -> str:
    if not rollout:
        return "-"
    return f"{rollout['status']} ({rollout['target']})"


def _instance_row(instance: dict[str, Any]) -> tuple[Any, ...]:
    exit_text = "-"
    if instance["oom_killed"]:
        exit_text = "OOM-killed"
    elif instance["exit_code"] is not None:
        exit_text = str(instance["exit_code"])
    if instance["next_attempt_at"] and instance["state"] in ("exited", "failed"):
        exit_text += f", retry in {max(0.0, instance['next_attempt_at'] - time.time()):.0f}s"
    isolation, limits = instance["isolation"], instance["limits"]
    sandbox = isolation.get("sandbox") or ("none" if isolation else "-")
    memory = limits.get("memory_bytes")
    return (instance["id"], instance["version"], instance["state"], instance["pid"], instance["port"],
            instance["restarts"], exit_text, sandbox, f"{memory // 2**20}Mi" if memory else "-",
            limits.get("cpu_cores") or "-")


@click.command(epilog="""\b
Examples:
  shipyard logs catalog
  shipyard logs orders -f
  shipyard logs catalog --instance catalog-3f2a1b-9c0d --tail 50
""")
@click.argument("service")
@click.option("--instance", "instance_id", metavar="ID", help="Only this instance.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", type=int, default=100, show_default=True, help="Lines of history per instance.")
@STATE_DIR_OPTION
def logs(service: str, instance_id: str | None, follow: bool, tail: int, state_dir: Path | None) -> None:
    """Print the stdout and stderr of a service's instances."""
    from shipyard.cli.logs import follow_logs, instance_log_files

    state = resolve_state_dir(state_dir)
    files = instance_log_files(state, service, instance_id)
    follow_logs(files, tail, follow)


@click.command(epilog="""\b
Examples:
  shipyard events
  shipyard events -f
  shipyard events -o json | jq 'map(select(.reason == "OOMKilled"))'
""")
@STATE_DIR_OPTION
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("--limit", type=int, default=50, show_default=True)
@OUTPUT_OPTION
def events(state_dir: Path | None, follow: bool, limit: int, output: str) -> None:
    """Show what happened: applies, rollouts, instance starts, stops, crashes and restarts."""
    client = Client(resolve_state_dir(state_dir))
    batch = client.request("GET", f"/events?limit={limit}")
    if output != "table" and not follow:
        emit(batch, output)
        return
    last = 0
    while True:
        for event in batch:
            stamp = datetime.datetime.fromtimestamp(event["time"]).strftime("%H:%M:%S.%f")[:-3]
            click.echo(f"{stamp}  {event['type']:<7} {event['object']:<28} {event['reason']:<18} "
                       f"{_count_text(event.get('count', 1)):>5}  {event['message']}")
            last = max(last, event["id"])
        if not follow:
            return
        if len(batch) < FOLLOW_PAGE:  # a full page means a burst: read on at once, without a gap
            time.sleep(0.5)
        batch = client.request("GET", f"/events?after={last}&limit={FOLLOW_PAGE}")


FOLLOW_PAGE = 500


def _count_text(count: int) -> str:
    """How often the event happened (`x3`), like the COUNT column of `kubectl get events`."""
    return f"x{count}"


COMMANDS = [apply, down, status, logs, events]
