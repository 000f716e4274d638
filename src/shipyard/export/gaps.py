"""What has no faithful equivalent on Kubernetes + Flux + Flagger: the nearest mapping and what it loses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, order=True)
class Gap:
    """One feature of the project that the export could only approximate (or had to drop)."""

    service: str          # "" for the project as a whole
    environments: str     # comma-separated, or "all"
    feature: str          # the Shipyard field or behaviour, e.g. `strategy.canary.analysis[2] (compare errorRate)`
    mapping: str          # the nearest mapping chosen ("dropped" when there is none)
    loss: str             # what it loses

    def line(self) -> str:
        where = f"{self.service} ({self.environments})" if self.service else f"project ({self.environments})"
        return f"{where}: {self.feature} → {self.mapping}: {self.loss}"


def merge_environments(gaps: Iterable[tuple[str, Gap]], every: list[str]) -> list[Gap]:
    """One gap per (service, feature, mapping, loss), naming the environments it appears in."""
    seen: dict[tuple[str, str, str, str], list[str]] = {}
    for environment, gap in gaps:
        key = (gap.service, gap.feature, gap.mapping, gap.loss)
        envs = seen.setdefault(key, [])
        if environment not in envs:
            envs.append(environment)
    result = []
    for (service, feature, mapping, loss), envs in seen.items():
        names = "all" if sorted(envs) == sorted(every) and len(every) > 1 else ", ".join(sorted(envs))
        result.append(Gap(service, names, feature, mapping, loss))
    return sorted(result)


def gaps_markdown(project: str, gaps: list[Gap]) -> str:
    """`GAPS.md`: every feature that did not map exactly, grouped by service."""
    lines = [f"# What did not map exactly: {project} on Kubernetes + Flux + Flagger", ""]
    if not gaps:
        lines += ["Every feature of the project has a faithful equivalent.", ""]
        return "\n".join(lines)
    lines += ["Each entry names the Shipyard feature, the nearest mapping the export chose, and what it loses.",
              "`shipyard export kubernetes --strict` refuses to export while any entry remains.", ""]
    current = None
    for gap in gaps:
        title = gap.service or "project"
        if title != current:
            lines += ([""] if current is not None else []) + [f"## {title}", ""]
            current = title
        lines.append(f"- **{gap.feature}** ({gap.environments}) → {gap.mapping}. {gap.loss}")
    lines.append("")
    return "\n".join(lines)
