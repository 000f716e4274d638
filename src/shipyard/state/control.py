"""The control file of a state dir: which process runs its control plane and where its API listens."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONTROL_FILE = "control.json"


def read_control(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / CONTROL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_control(state_dir: Path, data: dict[str, Any]) -> None:
    temporary = state_dir / (CONTROL_FILE + ".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, state_dir / CONTROL_FILE)
