"""Commands that run or talk to a control plane: up, apply, down, status, logs, events."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from shipyard.cli.client import STATE_DIR_ONLY_OPTION, STATE_DIR_OPTION, ApiError, Client, resolve_state_dir
from shipyard.cli.output import OUTPUT_OPTION, emit, info, table
from shipyard.state.control import PRIVATE_UMASK, read_control
from shipyard.errors import ControlPlaneError
from shipyard.spec.units import format_cpu, format_memory_approx, parse_cpu, parse_duration, parse_memory


def _capacity(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    result: dict[str, str] = {}
    for part in value.split(","):
        key, _, amount = part.partition("=")
        try:
            if key == "cpu":
                result["--capacity-cpu"] = str(parse_cpu(amount))
            elif key == "memory":
                result["--capacity-memory"] = str(parse_memory(amount))
            else:
                raise ValueError(f"unknown resource {key!r}")
        except ValueError as exc:
            raise click.BadParameter(f"{exc} (expected cpu=4,memory=8Gi)", param_hint="--capacity") from None
    return result


def _listen_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from shipyard.api.listeners import parse_listen

    if value is not None:
        try:
            parse_listen(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@click.command(epilog="""\b
Examples:
  shipyard up examples/shop --env dev --detach      # start in the background, wait until ready
  shipyard up examples/shop --env dev               # run in the foreground (Ctrl-C stops the control plane only)
  shipyard up . --env prod --capacity cpu=2,memory=4Gi --ingress-port 9080
  shipyard up --git https://git.example.com/shop.git --ref main --env prod --detach \\
      --interval 1m --webhook-secret-file /etc/shipyard/hook-secret   # follow a branch
  shipyard up --git ~/src/shop --path deploy --env dev --detach        # a local repository, committed state only
  shipyard up --env prod --detach                   # restart: follow what this state dir followed before
  shipyard up . --env prod --detach --api-listen 0.0.0.0:7070   # also on TCP, token in .shipyard/prod/token

Environments on one machine share a capacity ledger ($SHIPYARD_LEDGER, default ~/.shipyard/ledger.json):
each plans within what the others hold, and `status` shows them.
""")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path), required=False)
@click.option("--env", "environment", metavar="NAME", required=True, help="The environment this control plane keeps.")
@click.option("--git", "git_url", metavar="URL",
              help="Follow this git repository (https://, ssh://, file:// or a path) instead of a directory.")
@click.option("--ref", metavar="BRANCH", help="With --git: the branch to follow [default: main].")
@click.option("--path", "subdir", metavar="SUBDIR", help="With --git: the project's directory in the repository.")
@click.option("--interval", metavar="DURATION", help="With --git: how often to fetch, e.g. 30s or 5m [default: 30s].")
@click.option("--webhook-secret-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE",
              help="With --git: accept push webhooks (POST API/hooks/git) signed with the secret in FILE.")
@STATE_DIR_ONLY_OPTION
@click.option("--detach", is_flag=True, help="Run in the background; return once the first revision is applied.")
@click.option("--capacity", metavar="cpu=N,memory=SIZE", help="Schedule against this instead of the machine's size.")
@click.option("--ingress-port", type=int, default=8080, show_default=True, help="Port of the ingress listener.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="With --detach: how long to wait for ready.")
@click.option("--api-listen", metavar="HOST:PORT", callback=_listen_address,
              help="Also serve the API over TCP (for webhooks and remote CLIs); every request but GET /healthz and "
                   "the signed POST /hooks/git needs `Authorization: Bearer $(cat STATE/token)`.")
def up(directory: Path | None, environment: str, git_url: str | None, ref: str | None, subdir: str | None,
       interval: str | None, webhook_secret_file: Path | None, state_dir: Path | None, detach: bool,
       capacity: str | None, ingress_port: int, timeout: float, api_listen: str | None) -> None:
    """Start the control plane of an environment and keep it in the desired state.

    DIRECTORY (default `.`) is applied as it is on disk, again on `shipyard apply`. With --git the
    control plane follows a branch instead: it fetches every --interval, on `shipyard sync` and on a
    signed push webhook, and applies each new commit that validates, from a clean snapshot.
    """
    state = resolve_state_dir(state_dir, environment).resolve()
    os.umask(PRIVATE_UMASK)  # the state dir (git mirror, credentials, log) is private from the start
    git = _GitOptions(git_url, ref, subdir, interval, webhook_secret_file)
    argv = [sys.executable, "-m", "shipyard.daemon", "--env", environment, "--state-dir", str(state),
            "--ingress-port", str(ingress_port), *_source_args(directory, git, environment, state)]
    for flag, amount in _capacity(capacity).items():
        argv += [flag, amount]
    if api_listen:
        argv += ["--api-listen", api_listen]
    if not detach:
        from shipyard.daemon import main as daemon_main

        daemon_main(argv[3:])
        return
    _start_detached(argv, state, timeout)


@dataclass(frozen=True)
class _GitOptions:
    url: str | None
    ref: str | None
    subdir: str | None
    interval: str | None
    secret_file: Path | None


def _source_args(directory: Path | None, git: _GitOptions, environment: str, state: Path) -> list[str]:
    """The daemon's source options; the source is validated here first, so errors show before anything starts."""
    from shipyard.gitops.precheck import InvalidHead, precheck
    from shipyard.gitops.settings import SourceSettings, stored_settings
    from shipyard.source.credentials import save_password, split_credentials
    from shipyard.source.gitcli import normalize_url

    if directory is not None and git.url:
        raise click.UsageError("give a DIRECTORY or --git URL, not both")
    if not git.url:
        extra = [name for name, value in (("--ref", git.ref), ("--path", git.subdir), ("--interval", git.interval),
                                          ("--webhook-secret-file", git.secret_file)) if value is not None]
        if extra:
            raise click.UsageError(f"{', '.join(extra)} need{'s' if len(extra) == 1 else ''} --git URL")
        stored = stored_settings(state) if directory is None else None
        if stored is not None:
            info(f"following {stored.label} ({stored.ref}) as this state dir did before")
            return []
        directory = directory or Path(".")
        from shipyard.spec.render import render  # here: `status` and the rest run without the spec models

        render(directory, environment)  # invalid config: report it before anything starts
        return ["--project", str(directory.resolve())]
    try:
        text = git.interval or "30s"
        seconds = float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)  # a bare number: seconds
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--interval") from None
    url, password = split_credentials(normalize_url(git.url))
    if password is not None:  # the daemon's argv and the store get the URL without it
        save_password(state / "git", password)
    settings = SourceSettings.create(url, git.ref, git.subdir, seconds, git.secret_file)
    settings.read_secret()  # an unreadable or empty secret file: say so now
    try:
        precheck(settings, state, environment, warn=lambda text: info(f"warning: {text}"))
    except InvalidHead as exc:
        count = len(exc.problems)
        info(f"error: commit {exc.commit.short} ({exc.commit.message}) of {settings.label} ({settings.ref}) is "
             f"invalid: {count} error{'s' if count != 1 else ''}; nothing was started")
        raise
    args = ["--git", settings.url, "--ref", settings.ref, "--path", settings.path, "--interval", f"{seconds:g}"]
    return args + (["--webhook-secret-file", settings.secret_file] if settings.secret_file else [])


def _start_detached(argv: list[str], state: Path, timeout: float) -> None:
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = state / "control-plane.log"
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log_file:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                   start_new_session=True)
    deadline = time.monotonic() + timeout
    client = _wait_for_api(process, state, log_path, deadline)
    info(f"control plane pid {process.pid}, API {client.api}, state {state}")
    _wait_ready(client, deadline)
    _print_summary(client.request("GET", "/status"))


def _wait_for_api(process: subprocess.Popen[bytes], state: Path, log_path: Path, deadline: float) -> Client:
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            reason = next((line for line in reversed(tail) if line.startswith("Error:")), tail[-1] if tail else "")
            raise ControlPlaneError(f"the control plane exited with status {code}: {reason.removeprefix('Error: ')}")
        control = read_control(state)
        if control and control["pid"] == process.pid:
            client = Client(state, remote=False)
            try:
                if client.request("GET", "/status", timeout=2).get("revision"):
                    return client
            except ControlPlaneError:
                pass
        time.sleep(0.05)
    raise ControlPlaneError(f"the control plane did not come up in time; see {log_path}")


CRASH_LOOP = 3  # crashes in a row after which `up --detach` stops waiting: the service is crash-looping


def _wait_ready(client: Client, deadline: float) -> None:
    last = ""
    while time.monotonic() < deadline:
        status = client.request("GET", "/status")
        services = status["services"]
        _fail_on_crash_loop(client.state_dir, services)
        line = ", ".join(f"{s['name']} {s['ready_replicas']}/{s['desired_replicas']}" for s in services)
        if line != last:
            info(f"waiting: {line}")
            last = line
        if all(s["ready_replicas"] >= s["desired_replicas"] for s in services):
            return
        time.sleep(0.2)
    info("warning: not every service is ready yet; see `shipyard status` and `shipyard events`")


def _artifact_text(artifact: dict[str, Any] | None) -> str | None:
    """`catalog@sha256:1a2b3c4d5e6f` for a built image, `local source` for `artifact.path`."""
    if not artifact:
        return None
    if artifact.get("source") == "image":
        return f"{artifact['image']}@{artifact['digest'][:19]}"
    return "local source"


def _fail_on_crash_loop(state: Path, services: list[dict[str, Any]]) -> None:
    """Stop waiting when an instance has crashed CRASH_LOOP times in a row: say which, how, and what it printed."""
    from shipyard.cli.logs import last_lines

    for service in services:
        for instance in service["instances"]:
            if instance.get("crashes", 0) >= CRASH_LOOP and instance["state"] in ("exited", "failed"):
                how = "was OOM-killed" if instance["oom_killed"] else (
                    f"exited with code {instance['exit_code']}" if instance["exit_code"] is not None
                    else f"failed: {instance['message']}")
                lines = last_lines(state, instance["id"], 10)
                if lines:
                    info(f"last lines of {instance['id']}'s log:")
                    for line in lines:
                        info(f"  {line}")
                raise ControlPlaneError(
                    f"service {service['name']} is crash-looping: instance {instance['id']} {how} "
                    f"({instance['crashes']} crashes in a row); the control plane keeps running and retrying - "
                    f"see `shipyard logs {service['name']}`, fix it and `shipyard apply`, or `shipyard down`")


def _print_summary(status: dict[str, Any]) -> None:
    rows = [(s["name"], s["version"], f"{s['ready_replicas']}/{s['desired_replicas']}", s["endpoint"] or
             ", ".join(f"http://127.0.0.1:{i['port']}" for i in s["instances"] if i["state"] == "ready"))
            for s in status["services"]]
    table(["service", "version", "ready", "reach it at"], rows)
    if status.get("ingress"):
        click.echo(f"ingress: {status['ingress']}")


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


COMMANDS = [up, apply, down, status, logs, events]
