"""The control plane's own Prometheus metrics (text exposition format)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shipyard.engine.model import State
from shipyard.proxy.model import cluster_name
from shipyard.proxy.traffic import TRAFFIC_WINDOW_S, traffic_figures

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
    lines += _traffic_lines(reconciler)
    return "\n".join(lines) + "\n"


_TRAFFIC_HELP = [
    ("shipyard_release_requests_total", "counter", "Requests Envoy sent to the release since Envoy started."),
    ("shipyard_release_errors_5xx_total", "counter", "5xx answers of the release since Envoy started."),
    ("shipyard_release_success_rate", "gauge", f"Percent of non-5xx answers over the last {TRAFFIC_WINDOW_S:g}s."),
    ("shipyard_release_request_rate", "gauge", f"Requests per second over the last {TRAFFIC_WINDOW_S:g}s."),
    ("shipyard_release_latency_ms", "gauge", f"Upstream latency quantiles over the last {TRAFFIC_WINDOW_S:g}s."),
]


def _traffic_lines(reconciler: "Reconciler") -> list[str]:
    """Per-release traffic under Shipyard's names, labelled by service and release."""
    history = reconciler.router.traffic
    if history is None:
        return []
    releases = sorted({(i.service, i.release) for i in reconciler.instances.values()})
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _TRAFFIC_HELP}
    now = time.time()
    for service, release in releases:
        labels = f'service="{service}",release="{release}"'
        totals = history.cumulative(cluster_name(release))
        figures = traffic_figures(history.window(cluster_name(release), now - TRAFFIC_WINDOW_S, judged=False))
        samples["shipyard_release_requests_total"].append(f"{{{labels}}} {totals.requests}")
        samples["shipyard_release_errors_5xx_total"].append(f"{{{labels}}} {totals.errors_5xx}")
        if figures["success_rate"] is not None:
            samples["shipyard_release_success_rate"].append(f"{{{labels}}} {figures['success_rate']}")
        if figures["request_rate"] is not None:
            samples["shipyard_release_request_rate"].append(f"{{{labels}}} {figures['request_rate']}")
        for quantile in ("50", "95", "99"):
            value = figures[f"latency_p{quantile}_ms"]
            if value is not None:
                samples["shipyard_release_latency_ms"].append(
                    f'{{{labels},quantile="0.{quantile}"}} {value}')
    lines = []
    for name, kind, help_text in _TRAFFIC_HELP:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [name + sample for sample in samples[name]]
    return lines
