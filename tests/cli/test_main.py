"""The top-level group: its table of commands matches the modules, and a command loads only its own module."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import shipyard.cli
from shipyard.cli.main import COMMAND_MODULES


def test_the_table_names_every_command_of_every_module_and_nothing_else() -> None:
    modules = set(COMMAND_MODULES.values())
    defined = {command.name: module for module in modules
               for command in importlib.import_module(f"shipyard.cli.{module}").COMMANDS}
    assert defined == COMMAND_MODULES
    # and no commands module is left out of the table
    on_disk = {p.stem for p in Path(shipyard.cli.__file__).parent.glob("*_commands.py")}
    assert on_disk == modules


def test_status_does_not_import_the_other_commands() -> None:
    probe = ("import sys\nfrom shipyard.cli.main import main\n"
             "try:\n    main(['status', '--state-dir', '/nonexistent/state'])\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('shipyard.cli.') and m.endswith('_commands')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "['shipyard.cli.engine_commands']", result.stderr
    assert "no control plane" in result.stderr


def test_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "shipyard.cli.main", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert listed == set(COMMAND_MODULES)
