"""The control plane's own Prometheus metrics (text exposition format)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.engine.model import State

if TYPE_CHECKING:
    from shipyard.engine.reconciler import Reconciler


def render_metrics(reconciler: "Reconciler") -> str:
    lines = [
        "# HELP shipyard_reconcile_passes_total Reconcile passes since the control plane started.",
        "# TYPE shipyard_reconcile_passes_total counter",
        f"shipyard_reconcile_passes_total {reconciler.passes}",
        "# HELP shipyard_instances Instances by service and state.",
        "# TYPE shipyard_instances gauge",
    ]
    counts: dict[tuple[str, str], int] = {}
    for instance in reconciler.instances.values():
        key = (instance.service, instance.state.value)
        counts[key] = counts.get(key, 0) + 1
    services = sorted({i.service for i in reconciler.instances.values()})
    for service in services:
        for state in State:
            lines.append(f'shipyard_instances{{service="{service}",state="{state.value}"}} '
                         f'{counts.get((service, state.value), 0)}')
    lines += ["# HELP shipyard_instance_restarts_total Restarts of instances currently recorded.",
              "# TYPE shipyard_instance_restarts_total counter"]
    for service in services:
        restarts = sum(i.restarts for i in reconciler.instances.values() if i.service == service)
        lines.append(f'shipyard_instance_restarts_total{{service="{service}"}} {restarts}')
    lines += ["# HELP shipyard_rollouts Current rollout per service (1 for its status).",
              "# TYPE shipyard_rollouts gauge"]
    for service, rollout in sorted(reconciler.rollouts.items()):
        lines.append(f'shipyard_rollouts{{service="{service}",release="{rollout.target}",'
                     f'status="{rollout.status}"}} 1')
    return "\n".join(lines) + "\n"
