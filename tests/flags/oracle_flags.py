"""A flag file that exercises every part of flagd's evaluation, and random contexts for it (shared by the tests)."""

from __future__ import annotations

import random
from typing import Any

FLAG_FILE: dict[str, Any] = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "metadata": {"team": "shop"},
    "flags": {
        "banner": {  # internal users, then a 10 % split by targeting key (fractional shorthand)
            "state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
            "targeting": {"if": [{"$ref": "internal"}, "on", {"fractional": [["on", 10], ["off", 90]]}]},
        },
        "color": {  # a split with an explicit bucketing value and uneven weights
            "state": "ENABLED", "variants": {"red": "#c00", "green": "#0c0", "blue": "#00c"},
            "defaultVariant": "red",
            "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]},
                                         ["red", 1], ["green", 2], ["blue", 3]]},
        },
        "api-version": {  # sem_ver; no match → defaultVariant (DEFAULT)
            "state": "ENABLED", "variants": {"v1": 1, "v14": 14, "v2": 2}, "defaultVariant": "v1",
            "targeting": {"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "2.1.0"]}, "v2",
                                 {"sem_ver": [{"var": "appVersion"}, "~", "1.4.0"]}, "v14", None]},
            "metadata": {"owner": "api"},
        },
        "ratio": {  # floats, numeric comparisons
            "state": "ENABLED", "variants": {"low": 0.25, "high": 0.75}, "defaultVariant": "low",
            "targeting": {"if": [{">": [{"var": "age"}, 30]}, "high", "low"]},
        },
        "layout": {  # objects, starts_with, in
            "state": "ENABLED", "variants": {"compact": {"columns": 1, "dense": True},
                                             "wide": {"columns": 3, "dense": False}},
            "defaultVariant": "wide",
            "targeting": {"if": [{"or": [{"starts_with": [{"var": "locale"}, "de"]},
                                         {"in": [{"var": "country"}, ["AT", "CH"]]}]}, "compact", None]},
        },
        "beta-split": {  # a condition, then a three-way split without weights, else no variant
            "state": "ENABLED", "variants": {"a": "A", "b": "B", "c": "C"}, "defaultVariant": None,
            "targeting": {"if": [{"==": [{"var": "plan"}, "beta"]}, {"fractional": [["a"], ["b"], ["c"]]}, None]},
        },
        "old-checkout": {"state": "DISABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
        "motd": {"state": "ENABLED", "variants": {"hello": "Hello", "bye": "Bye"}, "defaultVariant": "hello"},
    },
    "$evaluators": {"internal": {"ends_with": [{"var": "email"}, "@example.com"]}},
}

# OpenFeature type of each flag and the caller's default used when no variant is chosen.
TYPES: dict[str, tuple[str, Any]] = {
    "banner": ("boolean", False), "color": ("string", "none"), "api-version": ("integer", -1),
    "ratio": ("float", -1.0), "layout": ("object", {}), "beta-split": ("string", "none"),
    "old-checkout": ("boolean", False), "motd": ("string", "none"),
}

VERSIONS = ["1.4.0", "1.4.9", "v1.4.2", "1.5.0", "2.0.0", "2.1.0", "2.1.0-rc.1", "3", "v2.2", "0.9.0-beta+7",
            "not-a-version"]


def random_context(rng: random.Random) -> dict[str, Any]:
    """A context with a targeting key and a random subset of the attributes the rules read."""
    user = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(1, 16)))
    context: dict[str, Any] = {"targetingKey": f"user-{user}"}
    choices: dict[str, Any] = {
        "email": lambda: f"{user}@{rng.choice(['example.com', 'example.org', 'mail.example.com'])}",
        "appVersion": lambda: rng.choice(VERSIONS),
        "age": lambda: rng.choice([rng.randint(0, 90), rng.uniform(0, 90)]),
        "locale": lambda: rng.choice(["de-DE", "de-AT", "en-US", "fr-FR", "deu"]),
        "country": lambda: rng.choice(["AT", "CH", "DE", "US"]),
        "plan": lambda: rng.choice(["beta", "free", "pro"]),
    }
    for name, make in choices.items():
        if rng.random() < 0.8:
            context[name] = make()
    return context
