"""Feature flags exported as flagd's ConfigMap: flagd's own schema accepts it, flagd's own evaluator (the
openfeature-provider-flagd in-process resolver, reading the file as the ConfigMap mounts it) answers what
Shipyard answers, and flagd is wired to it."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.provider import ProviderStatus
from ruamel.yaml import YAML

from shipyard.export.flagd import FLAGS_FILE
from shipyard.export.repository import export_project
from shipyard.export.validate import validate_objects
from shipyard.export.write import write_export
from shipyard.flags.evaluate import evaluate
from shipyard.spec.load import load_project
from shipyard.spec.render import render_environment
from tests.controlplane import wait_for
from tests.flags.oracle_flags import FLAG_FILE, random_context
from tests.flags.test_evaluate_oracle import flagd_answer, shipyard_answer
from tests.flags.test_flagd_schemas import validator
from tests.projects import probe_service, write_project, write_yaml

from .conftest import SHOP, fixed_images, kustomize

CONTEXTS = 2_000
OVERLAY = {"motd": {"defaultVariant": "bye"}, "old-checkout": None,
           "banner": {"targeting": {"if": [{"$ref": "internal"}, "off", "on"]}}}


def flag_project(root: Path) -> Path:
    write_project(root, [probe_service("web"), probe_service("api")])
    (root / "flags").mkdir()
    (root / "flags" / "flags.json").write_text(json.dumps(FLAG_FILE, indent=2))
    environment = root / "environments" / "dev.yaml"
    data = YAML(typ="safe", pure=True).load(environment.read_text())
    write_yaml(environment, {**data, "flags": OVERLAY})
    return root


def built_flags(kubectl: str, out: Path, environment: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    built = kustomize(kubectl, out / "apps" / environment)
    config_map = next(o for o in built if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-flags"))
    return built, json.loads(config_map["data"][FLAGS_FILE])


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_shops_flag_configmap_conforms_to_flagds_schema(tmp_path, kubectl, environment):
    write_export(tmp_path, export_project(SHOP, None, fixed_images).files)
    built, document = built_flags(kubectl, tmp_path, environment)
    assert [e.message for e in validator().iter_errors(document)] == []
    assert validate_objects(built, None) == []   # the built-in objects, flagd's included
    assert "**feature flags (Shipyard's OFREP listener)** (all) → ConfigMap `shop-flags` served by flagd" in \
        (tmp_path / "GAPS.md").read_text()
    recommendations = document["flags"]["recommendations"]
    assert (recommendations["defaultVariant"], "targeting" in recommendations) == \
        (("on", False) if environment == "dev" else ("off", True))


def test_a_broken_flag_document_is_caught_by_flagds_schema():
    document = json.loads(json.dumps(FLAG_FILE))
    document["flags"]["motd"]["state"] = "ON"
    assert list(validator().iter_errors(document))


def test_flagd_reading_the_exported_configmap_answers_like_shipyard(tmp_path, kubectl):
    root, out = flag_project(tmp_path / "p"), tmp_path / "out"
    write_export(out, export_project(root, None, fixed_images).files)
    _, document = built_flags(kubectl, out, "dev")
    assert [e.message for e in validator().iter_errors(document)] == []
    assert "old-checkout" not in document["flags"] and document["flags"]["motd"]["defaultVariant"] == "bye"
    mounted = tmp_path / "mounted" / FLAGS_FILE   # the file flagd reads where the ConfigMap is mounted
    mounted.parent.mkdir()
    mounted.write_text(json.dumps(document))

    desired, problems = render_environment(load_project(root), "dev")
    assert problems == [] and desired is not None and desired.flags is not None
    api.set_provider(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(mounted)), "export")
    try:
        client = api.get_client("export")
        wait_for(lambda: client.get_provider_status() == ProviderStatus.READY, timeout=30, what="flagd read the file")
        rng = random.Random(7)
        reasons = set()
        for _ in range(CONTEXTS):
            context = random_context(rng)
            for key in sorted(document["flags"]):
                ours = evaluate(desired.flags, key, context, time.time())
                assert ours.error_code is None, (key, context, ours)
                assert shipyard_answer(ours, key) == flagd_answer(client, key, context), (key, context)
                reasons.add(ours.reason)
    finally:
        api.shutdown()
    assert {"STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT"} <= reasons


def test_flagd_serves_the_mounted_configmap_and_services_reach_it_over_ofrep(tmp_path, kubectl, crds):
    write_export(tmp_path, export_project(SHOP, None, fixed_images).files)
    built = kustomize(kubectl, tmp_path / "apps" / "prod")
    flagd = next(o for o in built if o["kind"] == "Deployment" and o["metadata"]["name"] == "flagd")
    pod = flagd["spec"]["template"]["spec"]
    container = pod["containers"][0]
    uri = container["args"][container["args"].index("--uri") + 1]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "flags")
    volume = next(v for v in pod["volumes"] if v["name"] == "flags")
    assert uri == f"file:{mount['mountPath']}/{FLAGS_FILE}" and volume["configMap"]["name"] == "shop-flags"
    assert any(o["kind"] == "ConfigMap" and o["metadata"]["name"] == "shop-flags" for o in built)
    service = next(o for o in built if o["kind"] == "Service" and o["metadata"]["name"] == "flagd")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["ofrep"] == 8016
    frontend = next(o for o in built if o["kind"] == "Deployment" and o["metadata"]["name"] == "frontend")
    env = {e["name"]: e.get("value") for e in frontend["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SHIPYARD_OFREP_URL"] == "http://flagd:8016"
    policy = next(o for o in built if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "frontend")
    assert {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "flagd"}}}],
            "ports": [{"protocol": "TCP", "port": 8016}]} in policy["spec"]["egress"]
    assert validate_objects(built, crds) == []
