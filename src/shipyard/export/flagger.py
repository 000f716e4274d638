"""Progressive delivery as Flagger objects: a `Canary` (canary or blue/green mode) and its `MetricTemplate`s.

Pure. Every Shipyard field either maps to a Flagger field carrying the same number, or is recorded as
a Gap with the nearest mapping chosen (Flagger checks fixed thresholds per interval; Shipyard also
compares canary with primary statistically, holds on too little traffic, and runs gates in a sandbox).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Any, Optional, Union

from shipyard.export.gaps import Gap
from shipyard.export.workloads import SERVICE_PORT, Context, Obj, labels
from shipyard.spec.models import (
    ApprovalGate,
    CommandGate,
    CompareAnalysis,
    Match,
    PrometheusAnalysis,
    Service,
    ThresholdAnalysis,
    UrlGate,
)
from shipyard.spec.units import format_duration

GateSpec = Union[CommandGate, UrlGate, ApprovalGate]
BUILT_IN = {"successRate": "request-success-rate", "latencyP99": "request-duration"}


@dataclass(frozen=True)
class Options:
    namespace: str
    loadtester: str = "http://flagger-loadtester.test/"
    prometheus: str = "http://prometheus.monitoring:9090"
    mesh: str = "linkerd"   # the provider for a canary of a service that no Ingress reaches


def is_progressive(service: Service) -> bool:
    return service.strategy.type in ("canary", "blue-green")


def flagger_duration(seconds: float) -> str:
    """Flagger's durations are whole seconds or minutes (`^[0-9]+(m|s)`)."""
    whole = max(1, math.ceil(seconds))
    return f"{whole // 60}m" if whole % 60 == 0 else f"{whole}s"


def canary_objects(service: Service, ctx: Context, options: Options) -> list[Obj]:
    """The Canary (and its MetricTemplates) of a canary or blue-green service; [] for the others."""
    if service.strategy.type == "canary":
        return _canary(service, ctx, options)
    if service.strategy.type == "blue-green":
        return [_blue_green(service, ctx, options)]
    return []


def _gap(ctx: Context, service: Service, feature: str, mapping: str, loss: str) -> None:
    ctx.gaps.append(Gap(service.name, "", feature, mapping, loss))


def _base(service: Service, ctx: Context, provider: str) -> Obj:
    spec: Obj = {"provider": provider,
                 "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name}}
    if provider == "nginx":
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": service.name}
    spec["progressDeadlineSeconds"] = max(1, math.ceil(service.strategy.rolling.progress_deadline))
    spec["service"] = {"port": SERVICE_PORT, "targetPort": "http"}
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": service.name, "labels": labels(service, ctx)}, "spec": spec}


def _canary(service: Service, ctx: Context, options: Options) -> list[Obj]:
    canary = service.strategy.canary
    if service.ingress is not None:
        provider = "nginx"
        if ctx.dependents:
            _gap(ctx, service, "canary traffic from other services", "ingress-nginx shifts only ingress traffic",
                 f"calls from {', '.join(sorted(ctx.dependents))} reach the primary only; a mesh would split them too")
    else:
        provider = options.mesh
        _gap(ctx, service, "canary of a service without ingress", f"provider `{options.mesh}` (a service mesh)",
             "Shipyard splits traffic in its own Envoy; on a cluster this needs a mesh installed")
    obj = _base(service, ctx, provider)
    analysis: Obj = {"interval": flagger_duration(canary.interval), "threshold": canary.failure_threshold,
                     "stepWeights": list(canary.steps)}
    if canary.match:
        analysis["match"] = [_match(m) for m in canary.match]
        _gap(ctx, service, "strategy.canary.match together with steps", "Flagger `analysis.match`",
             "Flagger applies matches in A/B mode (iterations); with step weights the match routing depends "
             "on the provider")
    if canary.mirror:
        analysis["mirror"] = True
        analysis["mirrorWeight"] = int(round(canary.mirror))
        _gap(ctx, service, f"strategy.canary.mirror ({canary.mirror:g}%)", "`mirror: true` + `mirrorWeight`",
             "Flagger mirrors only with Istio; other providers ignore it")
    if canary.parallel_run is not None:
        _gap(ctx, service, f"strategy.canary.parallelRun ({canary.parallel_run.percent:g}%)", "dropped",
             "Flagger has no response comparison: no candidate-vs-live differences, no maxDifferences check")
    metrics, templates = _metrics(service, ctx, options)
    if metrics:
        analysis["metrics"] = metrics
    if canary.min_requests:
        _gap(ctx, service, f"strategy.canary.minRequests ({canary.min_requests})", "dropped",
             "Flagger judges every interval whatever the traffic; a query without data counts as a failed check")
    webhooks = _webhooks(service, ctx, options, canary.pre_rollout, "pre-rollout", "pre-rollout")
    webhooks += _webhooks(service, ctx, options, canary.pre_promotion, "pre-promotion", "confirm-promotion")
    if webhooks:
        analysis["webhooks"] = webhooks
    obj["spec"]["analysis"] = analysis
    return [obj, *templates]


def _blue_green(service: Service, ctx: Context, options: Options) -> Obj:
    blue_green = service.strategy.blue_green
    obj = _base(service, ctx, "kubernetes")
    analysis: Obj = {"interval": "10s", "threshold": 1, "iterations": 1}
    webhooks = _webhooks(service, ctx, options, blue_green.pre_promotion, "pre-promotion", "pre-rollout")
    if not blue_green.auto_promote:
        webhooks.append({"name": "approval", "type": "confirm-promotion",
                         "url": options.loadtester.rstrip("/") + "/gate/check"})
        _gap(ctx, service, "strategy.blueGreen.autoPromote: false", "a confirm-promotion gate of flagger-loadtester",
             "approve with the load tester's `/gate/open` instead of `shipyard rollout promote`")
    if webhooks:
        analysis["webhooks"] = webhooks
    if blue_green.scale_down_delay:
        _gap(ctx, service, f"strategy.blueGreen.scaleDownDelay ({format_duration(blue_green.scale_down_delay)})",
             "dropped", "Flagger scales blue down right after the switch: there is no instant undo window")
    obj["spec"]["analysis"] = analysis
    return obj


def _match(match: Match) -> Obj:
    if match.header is not None:
        rule = {k: v for k, v in (("exact", match.header.exact), ("prefix", match.header.prefix),
                                  ("regex", match.header.regex)) if v is not None}
        return {"headers": {match.header.name: rule}}
    assert match.cookie is not None
    cookie = f"{re.escape(match.cookie.name)}={re.escape(match.cookie.exact)}"
    return {"headers": {"cookie": {"regex": f"^(.*?;)?({cookie})(;.*)?$"}}}


def _range(low: Optional[float], high: Optional[float]) -> Obj:
    return {k: v for k, v in (("min", low), ("max", high)) if v is not None}


def _metrics(service: Service, ctx: Context, options: Options) -> tuple[list[Obj], list[Obj]]:
    canary = service.strategy.canary
    interval = flagger_duration(canary.interval)
    metrics: list[Obj] = []
    templates: list[Obj] = []
    built_in: dict[str, tuple[Optional[float], Optional[float]]] = {}  # one check per built-in, bounds combined
    for index, entry in enumerate(canary.analysis):
        where = f"strategy.canary.analysis[{index}]"
        if isinstance(entry, ThresholdAnalysis):
            if entry.metric == "errorRate":
                _tighten(built_in, "request-success-rate", None if entry.max is None else 100 - entry.max,
                         None if entry.min is None else 100 - entry.min)
            elif entry.metric in BUILT_IN:
                _tighten(built_in, BUILT_IN[entry.metric], entry.min, entry.max)
            elif entry.metric in ("latencyP50", "latencyP95"):
                _tighten(built_in, "request-duration", entry.min, entry.max)
                _gap(ctx, service, f"{where} ({entry.metric})", "request-duration (P99) with the same bounds",
                     "Flagger's built-in latency is the 99th percentile: the check is stricter than asked")
            else:
                _gap(ctx, service, f"{where} ({entry.metric})", "dropped",
                     "Flagger has no built-in request-rate check; write a MetricTemplate for your provider")
        elif isinstance(entry, PrometheusAnalysis):
            name = f"{service.name}-{index}"
            query = entry.query.replace("{service}", "{{ target }}")
            if "{release}" in query or "{cluster}" in query:
                query = query.replace("{release}", "{{ target }}-canary").replace("{cluster}", "{{ target }}-canary")
                _gap(ctx, service, f"{where} query placeholders {{release}}/{{cluster}}", "`{{ target }}-canary`",
                     "Shipyard's release and Envoy cluster names do not exist on the cluster; check the metric names "
                     "your provider exports")
            templates.append({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                              "metadata": {"name": name, "labels": labels(service, ctx)},
                              "spec": {"provider": {"type": "prometheus", "address": entry.address or options.prometheus},
                                       "query": query}})
            metrics.append({"name": name, "interval": interval,
                            "templateRef": {"name": name, "namespace": options.namespace},
                            "thresholdRange": _range(entry.min, entry.max)})
        elif isinstance(entry, CompareAnalysis):
            _gap(ctx, service, f"{where} (compare {entry.compare}, confidence {entry.confidence:.0%})", "dropped",
                 "Flagger checks fixed thresholds only: no statistical comparison of canary with primary; keep "
                 "threshold entries beside it")
    checks = [{"name": name, "interval": interval, "thresholdRange": _range(*bounds)}
              for name, bounds in sorted(built_in.items(), key=lambda item: list(BUILT_IN.values()).index(item[0]))]
    return checks + metrics, templates


def _tighten(checks: dict[str, tuple[Optional[float], Optional[float]]], name: str, low: Optional[float],
             high: Optional[float]) -> None:
    """Several entries on one built-in metric become one check with the tightest bounds."""
    old_low, old_high = checks.get(name, (None, None))
    lows = [v for v in (old_low, low) if v is not None]
    highs = [v for v in (old_high, high) if v is not None]
    checks[name] = (max(lows) if lows else None, min(highs) if highs else None)


def _webhooks(service: Service, ctx: Context, options: Options, gates: list[Any], field: str,
              kind: str) -> list[Obj]:
    target = f"http://{service.name}-canary.{options.namespace}:{SERVICE_PORT}"
    hooks: list[Obj] = []
    for index, gate in enumerate(gates):
        name = f"{field}-{index}"
        where = f"{_strategy_field(service)}.{_camel(field)}[{index}]"
        if isinstance(gate, CommandGate):
            command = f"TARGET_URL={shlex.quote(target)} {shlex.join(gate.command)}"
            hooks.append({"name": name, "type": kind, "url": options.loadtester,
                          "timeout": flagger_duration(gate.timeout), "metadata": {"type": "bash", "cmd": command}})
            _gap(ctx, service, f"{where} (command)", f"a `{kind}` webhook run by flagger-loadtester",
                 "the command runs in the load tester's image, not in the revision's directory or a sandbox")
        elif isinstance(gate, UrlGate):
            hooks.append({"name": name, "type": kind, "url": gate.url.replace("{target}", target),
                          "timeout": flagger_duration(gate.timeout)})
            _gap(ctx, service, f"{where} (url)", f"a `{kind}` webhook",
                 "Flagger POSTs its own JSON payload instead of a GET")
        else:
            hooks.append({"name": name, "type": "confirm-promotion" if kind != "pre-rollout" else "confirm-rollout",
                          "url": options.loadtester.rstrip("/") + "/gate/check"})
            _gap(ctx, service, f"{where} (approval)", "a gate of flagger-loadtester",
                 "approve with the load tester's `/gate/open` instead of `shipyard rollout approve`")
    if kind == "confirm-promotion" and any(not isinstance(g, ApprovalGate) for g in gates):
        _gap(ctx, service, f"{_strategy_field(service)}.prePromotion checks", "`confirm-promotion` webhooks",
             "a failing check holds the promotion until the progress deadline instead of counting as a failure")
    return hooks


def _strategy_field(service: Service) -> str:
    return "strategy.canary" if service.strategy.type == "canary" else "strategy.blueGreen"


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part.title() for part in rest)
