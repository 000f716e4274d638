"""The `shipyard` command: the group, global conventions, and the translation of errors into exit codes."""

from __future__ import annotations

import importlib
import sys

import click

from shipyard import __version__
from shipyard.errors import ShipyardError, SpecError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Each top-level command and the module that defines it. A command's module is imported only when that command
# runs (or `--help` lists them all): importing every module up front cost 0.4–0.7 s of CPU per call, and tests,
# scripts and shells call `shipyard status` in loops. tests/cli/test_main.py keeps this table and the modules'
# COMMANDS lists equal.
COMMAND_MODULES = {
    **dict.fromkeys(["validate", "render", "schema"], "spec_commands"),
    "up": "up_commands",
    **dict.fromkeys(["apply", "down", "status", "logs", "events"], "engine_commands"),
    **dict.fromkeys(["plan", "sync", "history", "rollback", "scale", "suspend", "resume"], "gitops_commands"),
    "rollout": "rollout_commands",
    "export": "export_commands",
    "flags": "flag_commands",
    **dict.fromkeys(["build", "artifacts", "pipeline"], "artifact_commands"),
    "secrets": "secret_commands",
    "db": "db_commands",
    **dict.fromkeys(["promote", "versions"], "promotion_commands"),
    **dict.fromkeys(["token", "audit"], "token_commands"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented pattern for large CLIs)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands = importlib.import_module(f"shipyard.cli.{module}").COMMANDS
        return next(command for command in commands if command.name == cmd_name)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="shipyard")
def cli() -> None:
    """Shipyard: deploy microservices from a git repository of YAML — on one machine, without downtime.

    \b
    Exit status: 0 success, 1 failure, 2 usage error.
    Data goes to stdout, diagnostics to stderr; NO_COLOR is honoured.
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: ShipyardError becomes one line per problem on stderr and exit 1."""
    try:
        # With standalone_mode off, click returns the code of `ctx.exit(n)` / `Exit(n)` instead of exiting.
        code = cli.main(args=argv, prog_name="shipyard", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except SpecError as exc:
        for problem in exc.problems:
            # One line each, whatever a key or value quoted in the message contains.
            click.echo(" ".join(str(problem).splitlines()), err=True)
        count = len(exc.problems)
        click.echo(f"{count} error{'s' if count != 1 else ''}", err=True)
        sys.exit(1)
    except ShipyardError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
