"""The export as a whole: layout, Kustomize builds of every overlay, upstream schemas, determinism, gaps."""

from __future__ import annotations

import copy
from pathlib import Path

from shipyard.cli.export_commands import _objects
from shipyard.export.repository import export_project
from shipyard.export.validate import validate_objects
from shipyard.export.write import write_export
from shipyard.export.yamltext import load_documents
from tests.projects import probe_service, write_project

from .conftest import DIGEST, SHOP, fixed_images, kustomize


def by_kind(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def test_the_shop_exports_the_layout_and_every_built_object_validates(tmp_path, crds, kubectl):
    result = export_project(SHOP, None, fixed_images)
    write_export(tmp_path, result.files)
    for service in ("catalog", "orders", "frontend"):
        for kind in ("deployment", "serviceaccount", "poddisruptionbudget", "configmap", "networkpolicy",
                     "kustomization"):
            assert (tmp_path / "apps" / "base" / service / f"{kind}.yaml").is_file(), (service, kind)
    for environment in ("dev", "prod"):
        assert (tmp_path / "clusters" / environment / "flux.yaml").is_file()
        built = kustomize(kubectl, tmp_path / "apps" / environment)
        assert validate_objects(built, crds) == [], environment
        cluster = load_documents((tmp_path / "clusters" / environment / "flux.yaml").read_text())
        assert validate_objects(cluster, crds) == []
        assert by_kind(cluster, "Kustomization")["spec"]["path"] == f"./apps/{environment}"
    assert validate_objects(_objects(result.files), crds) == []

    prod = kustomize(kubectl, tmp_path / "apps" / "prod")
    catalog = by_kind(prod, "Deployment", "catalog")
    assert catalog["spec"]["replicas"] == 3 and catalog["metadata"]["namespace"] == "shop"
    container = catalog["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.example.com/shop/catalog:1.0.0@{DIGEST}"
    assert container["resources"]["limits"] == {"cpu": "100m", "memory": "128Mi"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert catalog["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 5
    assert "preStop" in container["lifecycle"]
    assert by_kind(prod, "ConfigMap", "catalog-config")["data"]["CATALOG_CURRENCY"] == "USD"
    assert by_kind(prod, "ConfigMap", "frontend-config")["data"]["CATALOG_URL"] == "http://catalog"
    assert by_kind(prod, "Canary", "catalog")["spec"]["analysis"]["stepWeights"] == [10, 50, 100]
    assert by_kind(prod, "Canary", "frontend")["spec"]["provider"] == "kubernetes"
    # Flagger generates the Services of the services it manages; ours would fight it.
    assert {o["metadata"]["name"] for o in prod if o["kind"] == "Service"} == {"orders", "flagd"}  # flagd: flags
    ingress = by_kind(prod, "Ingress", "catalog")
    assert ingress["spec"]["rules"][0]["host"] == "catalog.shop.localhost"
    policy = by_kind(prod, "NetworkPolicy", "catalog")
    allowed = [p["podSelector"]["matchLabels"]["shipyard.dev/service"] for p in policy["spec"]["ingress"][0]["from"]]
    assert allowed == ["frontend", "orders"]

    # prod's orders has its own PostgreSQL database: its URL comes from a Secret the cluster provides
    orders = by_kind(prod, "Deployment", "orders")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "orders-databases", "key": "DATABASE_URL"}}} \
        in orders["env"]
    assert [g for g in result.gaps if g.service == "orders" and g.feature == "databases: orders (postgres)"
            and g.environments == "prod" and "orders-databases" in g.mapping]

    dev = kustomize(kubectl, tmp_path / "apps" / "dev")
    assert "DATABASE_URL" not in str(by_kind(dev, "Deployment", "orders"))   # dev keeps SQLite
    assert by_kind(dev, "Deployment", "catalog")["spec"]["replicas"] == 1
    assert by_kind(dev, "ConfigMap", "frontend-config")["data"]["FRONTEND_TITLE"] == "Shipyard Shop (dev)"
    assert not [o for o in dev if o["kind"] == "Canary"]


def test_overlays_carry_only_what_the_environment_overlays_change(tmp_path):
    write_export(tmp_path, export_project(SHOP, None, fixed_images).files)
    frontend = load_documents((tmp_path / "apps/dev/patches/frontend-configmap.yaml").read_text())[0]
    assert frontend == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frontend-config"},
                        "data": {"FRONTEND_TITLE": "Shipyard Shop (dev)"}}
    orders = load_documents((tmp_path / "apps/prod/patches/orders-deployment.yaml").read_text())[0]
    assert orders["spec"]["replicas"] == 3 and orders["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1
    assert "template" in orders["spec"] and "image" not in str(orders)  # versions travel through `images:`


def test_the_first_environment_takes_new_versions_through_flux_image_automation(tmp_path, crds):
    write_export(tmp_path, export_project(SHOP, None, fixed_images).files)
    text = (tmp_path / "apps/dev/kustomization.yaml").read_text()
    assert 'newTag: 1.0.0  # {"$imagepolicy": "flux-system:catalog:tag"}' in text
    assert '# {"$imagepolicy": "flux-system:catalog:digest"}' in text
    assert "$imagepolicy" not in (tmp_path / "apps/prod/kustomization.yaml").read_text()
    dev = load_documents((tmp_path / "clusters/dev/flux.yaml").read_text())
    kinds = sorted(o["kind"] for o in dev)
    assert kinds.count("ImageRepository") == 3 and kinds.count("ImagePolicy") == 3
    assert by_kind(dev, "ImageUpdateAutomation")["spec"]["update"] == {"path": "./apps/dev", "strategy": "Setters"}
    assert by_kind(dev, "ImageRepository", "catalog")["spec"]["image"] == "registry.example.com/shop/catalog"
    assert validate_objects(dev, crds) == []
    prod = load_documents((tmp_path / "clusters/prod/flux.yaml").read_text())
    assert sorted(o["kind"] for o in prod) == ["GitRepository", "Kustomization"]


def test_running_the_export_twice_gives_identical_bytes(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_export(first, export_project(SHOP, None, fixed_images).files)
    write_export(second, export_project(SHOP, None, fixed_images).files)
    write_export(second, export_project(SHOP, None, fixed_images).files)  # over itself, too
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def canary_project(root: Path) -> Path:
    canary = {"type": "canary", "canary": {
        "steps": [5, 25, 50, 100], "interval": "30s", "failureThreshold": 3, "minRequests": 20,
        "analysis": [{"metric": "successRate", "min": 99.5}, {"metric": "latencyP99", "max": "250ms"},
                     {"metric": "errorRate", "max": 2},
                     {"metric": "prometheus", "query": 'sum(rate(http_requests_total{service="{service}"}[1m]))',
                      "min": 1, "max": 500, "address": "http://prometheus.monitoring:9090"}],
        "match": [{"header": {"name": "x-canary", "exact": "always"}}],
        "preRollout": [{"command": ["./smoke.sh"], "timeout": "45s"}]}}
    blue_green = {"type": "blue-green", "blueGreen": {"autoPromote": False, "scaleDownDelay": "0s"}}
    return write_project(root, [probe_service("api", ingress={"host": "api.example.com"}, strategy=canary),
                                probe_service("web", needs=["api"], strategy=blue_green)])


def test_a_canary_becomes_a_flagger_canary_and_metric_template_with_the_same_numbers(tmp_path, crds, kubectl):
    out = tmp_path / "out"
    write_export(out, export_project(canary_project(tmp_path / "p"), None, fixed_images).files)
    built = kustomize(kubectl, out / "apps" / "dev")
    assert validate_objects(built, crds) == []
    canary = by_kind(built, "Canary", "api")["spec"]
    analysis = canary["analysis"]
    assert (analysis["interval"], analysis["threshold"], analysis["stepWeights"]) == ("30s", 3, [5, 25, 50, 100])
    assert analysis["match"] == [{"headers": {"x-canary": {"exact": "always"}}}]
    metrics = {m["name"]: m for m in analysis["metrics"]}
    assert [m["name"] for m in analysis["metrics"]] == ["request-success-rate", "request-duration", "api-3"]
    assert metrics["request-success-rate"]["thresholdRange"] == {"min": 99.5}  # tighter than errorRate ≤ 2 (≥ 98)
    assert metrics["request-duration"]["thresholdRange"] == {"max": 250}
    template_metric = metrics["api-3"]
    assert template_metric["thresholdRange"] == {"min": 1, "max": 500}
    template = by_kind(built, "MetricTemplate", "api-3")["spec"]
    assert template["provider"] == {"type": "prometheus", "address": "http://prometheus.monitoring:9090"}
    assert template["query"] == 'sum(rate(http_requests_total{service="{{ target }}"}[1m]))'
    hook = analysis["webhooks"][0]
    assert (hook["type"], hook["timeout"]) == ("pre-rollout", "45s") and hook["metadata"]["cmd"].endswith("./smoke.sh")
    assert canary["provider"] == "nginx" and canary["ingressRef"]["name"] == "api"

    web = by_kind(built, "Canary", "web")["spec"]
    assert web["provider"] == "kubernetes" and web["analysis"]["iterations"] >= 1 and "stepWeights" not in web["analysis"]
    assert [h["type"] for h in web["analysis"]["webhooks"]] == ["confirm-promotion"]
    gaps = (out / "GAPS.md").read_text()
    for feature in ("minRequests (20)", "(command)", "autoPromote: false", "match together with steps"):
        assert feature in gaps, feature


def test_a_deliberately_broken_object_is_caught_by_the_schemas(crds):
    result = export_project(SHOP, ["prod"], fixed_images)
    canary = load_documents(result.files["apps/prod/catalog/canary.yaml"])[0]
    broken = copy.deepcopy(canary)
    broken["spec"]["analysis"]["threshold"] = "2"       # Flagger wants an integer
    problems = validate_objects([broken], crds)
    assert problems and "spec.analysis.threshold" in str(problems[0]) and "'2' is not of type" in str(problems[0])
    misspelt = copy.deepcopy(canary)
    misspelt["spec"]["analysis"]["stepWeight5"] = [1]   # pruned silently by the API server: refused here
    assert [str(p) for p in validate_objects([misspelt], crds)] == ["Canary catalog: spec.analysis.stepWeight5: "
                                                                     "unknown field"]
    deployment = load_documents(result.files["apps/base/catalog/deployment.yaml"])[0]
    deployment["spec"]["replicas"] = "3"
    assert validate_objects([deployment], crds)
    deployment["spec"]["replicas"] = 3
    deployment["spec"]["template"]["spec"]["containerz"] = []
    assert validate_objects([deployment], crds)
