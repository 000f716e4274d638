"""Commands about git as the source of desired state: plan (offline), sync, history, rollback, scale, suspend, resume."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import click

from shipyard.cli.client import STATE_DIR_OPTION, ApiError, Client, resolve_state_dir
from shipyard.cli.output import OUTPUT_OPTION, emit, info, table, warn

EXIT_CHANGES = 3

SOURCE = click.argument("source", metavar="SOURCE")
PATH_OPTION = click.option("--path", "subdir", metavar="SUBDIR",
                           help="The project's directory inside the repository (default: SOURCE itself).")
REF_OPTION = click.option("--ref", metavar="BRANCH",
                          help="The branch to follow (default: the checked-out branch of a local repository, else main).")


@click.command(epilog="""\b
Exit status: 0 nothing changes, 3 something changes, 1 the target revision is invalid
(its errors on stderr as FILE:LINE:COL: error: …) or a revision cannot be read, 2 usage error.

\b
Examples:
  shipyard plan . --env prod --from main --to HEAD
  shipyard plan . --env all --from origin/main --to HEAD -o json > plan.json
  shipyard plan https://git.example.com/shop.git --env all --ref main --to 3f2a9c1d
  shipyard plan . --path deploy/shop --env staging --from v1.4.0 --to v1.5.0
""")
@SOURCE
@click.option("--env", "environment", metavar="NAME", required=True,
              help="The environment to compare, or `all` for every environment.")
@click.option("--from", "base", metavar="REV", help="The base revision (default: the head of --ref).")
@click.option("--to", "target", metavar="REV", required=True, help="The revision to preview, e.g. a pull request's head.")
@PATH_OPTION
@REF_OPTION
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
def plan(source: str, environment: str, base: str | None, target: str,
         subdir: str | None, ref: str | None, output: str) -> None:
    """Preview what a revision would change in each environment: versions, replicas, config, rollouts.

    SOURCE is a directory in a git repository or a git URL. Both revisions are rendered offline
    from clean snapshots of their commits; nothing is deployed.
    """
    # imported here: the renderer behind them is not needed by the commands that only talk to a control plane
    from shipyard.preview.plan import InvalidTarget, make_plan
    from shipyard.preview.report import plan_lines
    from shipyard.preview.revisions import History

    history = History.open(source, path=subdir, ref=ref)
    try:
        result = make_plan(history, base or history.ref, target, environment, note=info)
    except InvalidTarget as exc:
        count = len(exc.problems)
        info(f"error: the target revision {exc.target.rev} ({exc.target.commit.short}) of {history.label} "
             f"is invalid: {count} error{'s' if count != 1 else ''}")
        raise
    if output == "json":
        emit(result.to_dict(), "json")
    else:
        click.echo("\n".join(plan_lines(result)))
    if result.changed:
        # SystemExit, not ctx.exit: click (standalone_mode=False) turns Exit into a return value main() drops.
        sys.exit(EXIT_CHANGES)


@click.command(epilog="""\b
Exit status: 0 the head is applied (or already was, or waits because the environment is suspended),
1 the head is invalid (its errors on stderr as FILE:LINE:COL: error: …) or the fetch failed.

\b
Examples:
  shipyard sync
  shipyard sync --state-dir .shipyard/prod
""")
@STATE_DIR_OPTION
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Give up waiting after this many seconds.")
def sync(state_dir: Path | None, timeout: float) -> None:
    """Fetch the followed branch now and apply its head; returns when it is applied or rejected."""
    result = Client(resolve_state_dir(state_dir)).request("POST", "/sync", timeout=timeout)
    outcome = result["result"]
    if outcome in ("rejected", "failed"):
        for error in result["errors"]:
            click.echo(error, err=True)
        raise click.ClickException(result["message"])
    info(result["message"])
    if result["commit"]:
        click.echo(result["commit"])


@click.command(epilog="""\b
Examples:
  shipyard history
  shipyard history --limit 5 -o json | jq '.[] | {commit: .commit.short, result, services}'
""")
@STATE_DIR_OPTION
@click.option("--limit", type=int, default=20, show_default=True, help="How many revisions to show.")
@OUTPUT_OPTION
def history(state_dir: Path | None, limit: int, output: str) -> None:
    """List the revisions applied to (or rejected by) the environment, newest first, with what each did."""
    entries = Client(resolve_state_dir(state_dir)).request("GET", f"/history?limit={limit}")
    if output != "table":
        emit(entries, output)
        return
    table(["applied", "commit", "result", "author", "date", "message", "services"],
          [_history_row(entry) for entry in entries])


def _history_row(entry: dict[str, Any]) -> tuple[Any, ...]:
    commit = entry.get("commit") or {}
    result = entry["result"]
    if entry.get("errors"):
        more = len(entry["errors"]) - 1
        result += f": {entry['errors'][0]}" + (f" (+{more} more)" if more else "")
    services = ", ".join(f"{name} {s['version']}{_short_digest(s.get('digest'))}×{s['replicas']}"
                         for name, s in entry.get("services", {}).items())
    return (_local_time(entry["applied_at"]), commit.get("short") or entry["revision"], result,
            commit.get("author") or "-", commit.get("date", "-")[:19].replace("T", " "),
            commit.get("message") or entry.get("source") or "-", services or "-")


def _short_digest(digest: str | None) -> str:
    """`@sha256:` and 12 hex digits of a built artifact's digest, as `status` shows it; "" for a local source."""
    return f"@{digest[:19]}" if digest else ""


def _local_time(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


@click.command(epilog="""\b
Rolling back is `git revert` of the commits after COMMIT, which the history keeps. For a local
repository this process can write, the reverts are committed on the followed branch (and applied
at once if the control plane runs); for any other repository the exact git commands are printed.

\b
Examples:
  shipyard history                       # find the revision to go back to
  shipyard rollback --to 3f2a9c1d        # revert every commit after 3f2a9c1d
  shipyard rollback --to HEAD~1          # undo the newest commit
  shipyard rollback --to 3f2a9c1d --print   # only print the git commands
""")
@click.option("--to", "target", metavar="COMMIT", required=True, help="The revision to go back to (sha, tag, HEAD~1 …).")
@click.option("--print", "print_only", is_flag=True, help="Print the git commands instead of committing.")
@STATE_DIR_OPTION
def rollback(target: str, print_only: bool, state_dir: Path | None) -> None:
    """Bring back the desired state of an earlier revision by reverting the commits after it."""
    from shipyard.gitops.rollback import MAX_COMMITS, commits_to_revert, revert_script
    from shipyard.gitops.settings import stored_settings
    from shipyard.source.errors import SourceError
    from shipyard.source.git import LocalRepo, Mirror

    state = resolve_state_dir(state_dir)
    settings = stored_settings(state)
    if settings is None:
        raise click.ClickException(f"{state} does not follow a git repository: roll back with your own tools "
                                   "and `shipyard apply`")
    local = LocalRepo(Path(settings.url.removeprefix("file://")), settings.ref) if _is_local(settings.url) else None
    writable = local is not None and local.is_writable_local()
    repository = local if writable else Mirror(state / "git", settings.url)
    if isinstance(repository, Mirror):
        repository.fetch(settings.ref)
    rev = settings.ref + target.removeprefix("HEAD") if target.startswith("HEAD") else target  # HEAD: the followed branch
    commits = commits_to_revert(repository.log(settings.ref, MAX_COMMITS), repository.resolve(rev))
    for commit in commits:
        info(f"revert {commit.short} {commit.message} ({commit.author})")
    if print_only or not writable:
        if not print_only:
            info(f"{settings.label} is not a local repository this process can write; run:")
        click.echo("\n".join(revert_script(settings.label, settings.ref, commits)))
        return
    assert local is not None
    for commit in commits:
        try:
            made = local.revert(commit.sha)
        except SourceError as exc:
            raise click.ClickException(str(exc)) from None
        info(f"committed {made.short} {made.message}")
    _apply_now(state)


def _is_local(url: str) -> bool:
    return url.startswith("/") or url.startswith("file://")


def _apply_now(state: Path) -> None:
    client = Client(state)
    if not client.alive():
        info("the control plane is not running: the revert applies when it starts")
        return
    result = client.request("POST", "/sync", timeout=600)
    info(result["message"])
    if result["result"] in ("rejected", "failed"):
        raise click.exceptions.Exit(1)


@click.command(epilog="""\b
For emergencies. Git stays the source of truth: unless the environment is suspended, the next sync
(the next fetch interval, a webhook or `shipyard sync`) puts back the replicas git declares.

\b
Examples:
  shipyard suspend && shipyard scale orders 6     # hold it until `shipyard resume`
  shipyard scale catalog 0
""")
@click.argument("service")
@click.argument("replicas", type=click.IntRange(min=0), metavar="N")
@STATE_DIR_OPTION
def scale(service: str, replicas: int, state_dir: Path | None) -> None:
    """Run N instances of SERVICE now, overriding the declared replicas until the source is applied again."""
    client = Client(resolve_state_dir(state_dir))
    try:
        result = client.request("POST", "/scale", json={"service": service, "replicas": replicas})
    except ApiError as exc:
        raise click.ClickException(exc.body.get("message", str(exc))) from None
    info(f"scaled {service} to {replicas} (the source declares {result['declared']})")
    if result["suspended"]:
        info("the environment is suspended: this stays until `shipyard resume`")
    elif result["following"]:
        warn(f"git will win at the next sync (in {result['next_sync_in']:.0f} s); run `shipyard suspend` first "
             "to keep it")
    else:
        warn("the next `shipyard apply` resets it; run `shipyard suspend` first to keep it")


@click.command(epilog="""\b
Examples:
  shipyard suspend
  shipyard scale orders 6
  shipyard resume          # git's revision (and replicas) apply again
""")
@STATE_DIR_OPTION
def suspend(state_dir: Path | None) -> None:
    """Stop applying the source: new commits wait, imperative changes (scale) stay until resume."""
    Client(resolve_state_dir(state_dir)).request("POST", "/suspend")
    info("suspended: new commits wait and `shipyard scale` changes stay until `shipyard resume`")


@click.command(epilog="""\b
Examples:
  shipyard resume
""")
@STATE_DIR_OPTION
def resume(state_dir: Path | None) -> None:
    """Apply the source again: the newest commit, and its replicas in place of `shipyard scale` changes."""
    result = Client(resolve_state_dir(state_dir)).request("POST", "/resume")
    info("resumed: fetching and applying the followed branch now" if result["following"]
         else "resumed: the next `shipyard apply` applies the directory again")


COMMANDS = [plan, sync, history, rollback, scale, suspend, resume]
