"""Commands that read a config repository's git history offline: plan."""

from __future__ import annotations

import sys

import click

from shipyard.cli.output import emit, info
from shipyard.preview.plan import ALL, InvalidTarget, make_plan
from shipyard.preview.report import plan_lines
from shipyard.preview.revisions import History

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
              help=f"The environment to compare, or `{ALL}` for every environment.")
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


COMMANDS = [plan]
