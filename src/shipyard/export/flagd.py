"""Feature flags on a cluster: each environment's flag set as a ConfigMap holding flagd's flag file (pure).

The flag file is the one Shipyard already resolves and serves (`shipyard.flags.files.load_flags`: the
`flags/*` files with the environment's `flags:` overlay merged and `$ref`s resolved), so flagd started
with `--uri file:` on the mounted ConfigMap serves what Shipyard's OFREP listener serves.
"""

from __future__ import annotations

import json
from typing import Any

from ruamel.yaml.scalarstring import LiteralScalarString

from shipyard.flags.evaluate import FlagSet

Obj = dict[str, Any]
FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
FLAGS_FILE = "flags.flagd.json"      # the ConfigMap key, i.e. the file name where the ConfigMap is mounted
MOUNT_DIR = "/etc/flagd"


def config_map_name(project: str) -> str:
    return f"{project}-flags"


def flagd_document(flags: FlagSet) -> Obj:
    """flagd's flag file of one environment, with the `$schema` flagd's tooling validates against."""
    return {"$schema": FLAGD_SCHEMA, **flags.document}


def flags_config_map(project: str, flags: FlagSet) -> Obj:
    """The ConfigMap that flagd reads (`flagd start --uri file:/etc/flagd/flags.flagd.json` with it mounted)."""
    text = json.dumps(flagd_document(flags), indent=2, ensure_ascii=False) + "\n"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": config_map_name(project),
                         "labels": {"app.kubernetes.io/part-of": project,
                                    "app.kubernetes.io/managed-by": "shipyard-export",
                                    "app.kubernetes.io/component": "feature-flags"}},
            "data": {FLAGS_FILE: LiteralScalarString(text)}}  # a block in the YAML: readable diffs
