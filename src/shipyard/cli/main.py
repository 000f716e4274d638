"""The `shipyard` command: the group, global conventions, and the translation of errors into exit codes."""

from __future__ import annotations

import sys

import click

from shipyard import __version__
from shipyard.errors import ShipyardError, SpecError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="shipyard")
def cli() -> None:
    """Shipyard: deploy microservices from a git repository of YAML — on one machine, without downtime.

    \b
    Exit status: 0 success, 1 failure, 2 usage error.
    Data goes to stdout, diagnostics to stderr; NO_COLOR is honoured.
    """


def _register() -> None:
    from shipyard.cli import (
        artifact_commands,
        db_commands,
        engine_commands,
        export_commands,
        flag_commands,
        gitops_commands,
        promotion_commands,
        rollout_commands,
        secret_commands,
        spec_commands,
        token_commands,
    )

    for module in (spec_commands, engine_commands, gitops_commands, rollout_commands, export_commands, flag_commands,
                   artifact_commands, secret_commands, db_commands, promotion_commands, token_commands):
        for command in module.COMMANDS:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: ShipyardError becomes one line per problem on stderr and exit 1."""
    _register()
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
