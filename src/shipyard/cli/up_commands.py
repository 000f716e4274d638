"""`shipyard up`: validate the source, start an environment's control plane (or run it in the foreground), and with
--detach wait until its services are ready, stopping early on a crash loop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from shipyard.cli.client import STATE_DIR_ONLY_OPTION, Client, resolve_state_dir
from shipyard.cli.output import info, table
from shipyard.errors import ControlPlaneError
from shipyard.spec.units import parse_cpu, parse_duration, parse_memory
from shipyard.state.control import PRIVATE_UMASK, read_control


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


COMMANDS = [up]
