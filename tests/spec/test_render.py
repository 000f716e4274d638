"""Table tests of rendering: overlays merged onto bases, and each kind of problem that spans files."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.errors import SpecError
from shipyard.spec.render import check, render

from tests.shop import use_paths

from .conftest import ShopCopy
from .expect import Expect, assert_problems

Edit = Callable[[ShopCopy], None]

CATALOG = "services/catalog.yaml"
ORDERS = "services/orders.yaml"
FRONTEND = "services/frontend.yaml"
DEV = "environments/dev.yaml"
PROD = "environments/prod.yaml"


def edit(file: str, old: str, new: str) -> Edit:
    return lambda shop: shop.edit(file, old, new)


def paths(app: str) -> Edit:
    """The service in its inner-loop form (`artifact.path: apps/APP`), for the cases about paths."""
    return lambda shop: use_paths(shop.root, (app,)) and None


def edits(*steps: Edit) -> Edit:
    def apply(shop: ShopCopy) -> None:
        for step in steps:
            step(shop)
    return apply


# Both environments' ports removed from the overlays, so that the bases' ports are the ones deployed.
BASE_PORTS = edits(
    edit(CATALOG, "replicas: 1", "replicas: 1\nendpoint: {port: 7000}"),
    edit(ORDERS, "needs: [catalog]", "endpoint: {port: 7000}\nneeds: [catalog]"),
    edit(DEV, "  catalog:\n    endpoint: {port: 8101}\n  orders:\n    endpoint: {port: 8102}\n",
         "  catalog: {}\n  orders:\n"),
    edit(PROD, "    endpoint: {port: 9101}\n", ""),
    edit(PROD, "    endpoint: {port: 9102}\n", ""),
)

CASES = [
    # references to services
    pytest.param(edit(ORDERS, "needs: [catalog]", "needs: [catalgo]"),
                 [Expect(ORDERS, 8, "needs[0]", "unknown service `catalgo`; did you mean `catalog`?")],
                 id="unknown service in needs"),
    pytest.param(edit(ORDERS, "needs: [catalog]", "needs: [catalog, orders]"),
                 [Expect(ORDERS, 8, "needs[1]", "a service cannot need itself")], id="a service needing itself"),
    pytest.param(edit(DEV, "FRONTEND_TITLE: Shipyard Shop (dev)",
                      "FRONTEND_TITLE: Shipyard Shop (dev)\n  payments: {}"),
                 [Expect(DEV, 14, "services.payments", "unknown service `payments`: no services/*.yaml defines it")],
                 id="unknown service in an environment"),
    pytest.param(edit(DEV, "  orders:", "  ordrs:"),
                 [Expect(DEV, 8, "services.ordrs", "did you mean `orders`?"),
                  Expect(FRONTEND, 8, "needs[1]", "needs `orders`, which this environment does not deploy")],
                 id="misspelt service in an environment"),
    pytest.param(edit(DEV, "  catalog:\n    endpoint: {port: 8101}\n", ""),
                 [Expect(FRONTEND, 8, "needs[0]", "needs `catalog`, which this environment does not deploy"),
                  Expect(ORDERS, 8, "needs[0]", "needs `catalog`, which this environment does not deploy")],
                 id="need of a service not deployed in the environment"),
    # endpoints and routes
    pytest.param(edit(DEV, "port: 8102", "port: 8101"),
                 [Expect(DEV, 9, "services.orders.endpoint.port", "port 8101 is already the endpoint of `catalog`")],
                 id="one port, two services, via an overlay"),
    pytest.param(BASE_PORTS,
                 [Expect(ORDERS, 8, "endpoint.port", "port 7000 is already the endpoint of `catalog`")],
                 id="one port, two services, via the bases"),
    pytest.param(edit(ORDERS, "path: /orders", "path: /"),
                 [Expect(ORDERS, 9, "ingress", "the same ingress host and path as `frontend`")],
                 id="one route, two services"),
    # what an overlay may not do
    pytest.param(edit(DEV, "  catalog:\n", "  catalog:\n    name: shop-catalog\n"),
                 [Expect(DEV, 7, "services.catalog.name", "`name` cannot be changed by an overlay")],
                 id="overlay changing name"),
    pytest.param(edit(DEV, "  catalog:\n", "  catalog:\n    kind: Environment\n"),
                 [Expect(DEV, 7, "services.catalog.kind", "`kind` cannot be changed by an overlay")],
                 id="overlay changing kind"),
    pytest.param(edit(DEV, "  catalog:\n", "  catalog:\n    artifact: null\n"),
                 [Expect(DEV, 7, "services.catalog.artifact", "required field is missing")],
                 id="overlay removing a required field"),
    pytest.param(edit(DEV, "  catalog:\n    endpoint: {port: 8101}", "  catalog: 3"),
                 [Expect(DEV, 6, "services.catalog", "valid dictionary")], id="overlay not a mapping"),
    # overlays' own mistakes, reported in the environment's file under services.NAME
    pytest.param(edit(PROD, "replicas: 3\n    endpoint: {port: 9101}", "replcas: 3\n    endpoint: {port: 9101}"),
                 [Expect(PROD, 8, "services.catalog.replcas", "did you mean `replicas`?")],
                 id="unknown field in an overlay"),
    pytest.param(edit(PROD, "replicas: 2", "replicas: -2"),
                 [Expect(PROD, 33, "services.frontend.replicas", "must be at least 0")],
                 id="negative replicas in an overlay"),
    pytest.param(edit(PROD, "interval: 10s", "interval: 0ms"),
                 [Expect(PROD, 17, "services.catalog.strategy.canary.interval", "greater than 0")],
                 id="zero interval in an overlay"),
    pytest.param(edit(PROD, "type: canary", "type: canary-ish"),
                 [Expect(PROD, 14, "services.catalog.strategy.type",
                         "'rolling', 'recreate', 'blue-green' or 'canary'")],
                 id="unknown strategy type"),
    # artifacts
    pytest.param(edits(paths("catalog"), edit(CATALOG, "path: apps/catalog", "path: apps/katalog")),
                 [Expect(CATALOG, 6, "artifact.path", "no directory 'apps/katalog' in the project")],
                 id="artifact path missing"),
    pytest.param(edits(paths("catalog"), edit(CATALOG, "path: apps/catalog", "path: ../shop/apps/catalog")),
                 [Expect(CATALOG, 6, "artifact.path", "must be a directory inside the project")],
                 id="artifact path escaping with .."),
    pytest.param(edits(paths("catalog"), edit(CATALOG, "path: apps/catalog", "path: /tmp")),
                 [Expect(CATALOG, 6, "artifact.path", "must be a directory inside the project")],
                 id="artifact path absolute"),
    # canary
    pytest.param(edit(PROD, "steps: [10, 50, 100]", "steps: [50, 10, 100]"),
                 [Expect(PROD, 16, "services.catalog.strategy.canary.steps", "strictly ascending")],
                 id="canary steps not ascending"),
    pytest.param(edit(PROD, "steps: [10, 50, 100]", "steps: [10, 50, 90]"),
                 [Expect(PROD, 16, "services.catalog.strategy.canary.steps", "the last step must be 100")],
                 id="canary steps not ending at 100"),
    pytest.param(edit(PROD, "steps: [10, 50, 100]", "steps: [10, 150]"),
                 [Expect(PROD, 16, "services.catalog.strategy.canary.steps[1]", "at most 100")],
                 id="canary step above 100"),
    pytest.param(edit(PROD, "{compare: errorRate}", "{threshold: 3}"),
                 [Expect(PROD, 23, "services.catalog.strategy.canary.analysis[2]",
                         "an analysis entry needs `metric` or `compare`")], id="analysis entry of no kind"),
    pytest.param(edit(PROD, "{metric: successRate, min: 99}", "{metric: sucessRate, min: 99}"),
                 [Expect(PROD, 21, "services.catalog.strategy.canary.analysis[0].metric", "'successRate'")],
                 id="analysis of an unknown metric"),
    pytest.param(edit(PROD, "{metric: latencyP99, max: 500ms}", "{metric: latencyP99, max: fast}"),
                 [Expect(PROD, 22, "services.catalog.strategy.canary.analysis[1].max", "invalid duration 'fast'")],
                 id="analysis threshold not a number"),
    pytest.param(edit(PROD, "{compare: errorRate}", "{compare: errorRate, confidense: 99%}"),
                 [Expect(PROD, 23, "services.catalog.strategy.canary.analysis[2].confidense",
                         "did you mean `confidence`?")], id="analysis entry with a misspelt field"),
    pytest.param(edit(PROD, "failureThreshold: 2\n", "failureThreshold: 2\n        preRollout: [{script: x}]\n"),
                 [Expect(PROD, 19, "services.catalog.strategy.canary.preRollout[0]", "a gate needs one of")],
                 id="gate of no kind"),
]


@pytest.mark.parametrize(("breaking", "expected"), CASES)
def test_problems(shop: ShopCopy, breaking: Edit, expected: list[Expect]) -> None:
    breaking(shop)
    assert_problems(check(shop.root), expected)


def test_the_example_has_no_problems(shop: ShopCopy) -> None:
    assert check(shop.root) == []


def test_an_overlay_merges_onto_the_base(shop: ShopCopy) -> None:
    catalog = render(shop.root, "prod").services["catalog"]
    assert catalog.replicas == 3                               # overlay scalar
    assert catalog.env == {"CATALOG_CURRENCY": "USD"}           # overlay map, key by key
    assert catalog.ingress is not None and catalog.ingress.host == "catalog.shop.localhost"  # base, untouched
    assert catalog.resources.cpu == 0.1 and catalog.resources.memory == 128 * 1024**2  # memory from the overlay
    assert catalog.health.readiness.interval == 0.5            # base
    assert catalog.strategy.canary.steps == [10, 50, 100]      # overlay list replaces the default


def test_lists_replace_and_null_removes(shop: ShopCopy) -> None:
    shop.edit(DEV, "    env:\n      FRONTEND_TITLE: Shipyard Shop (dev)",
              "    needs: [catalog]\n    env:\n      FRONTEND_TITLE: null\n      DEBUG: 1\n    ingress: null")
    frontend = render(shop.root, "dev").services["frontend"]
    assert frontend.needs == ["catalog"]
    assert frontend.env == {"DEBUG": "1"}
    assert frontend.ingress is None


def test_services_not_listed_in_an_environment_are_not_deployed(shop: ShopCopy) -> None:
    shop.edit(DEV, "  orders:\n    endpoint: {port: 8102}\n", "")
    shop.edit(DEV, "  frontend:\n    endpoint: {port: 8100}\n    env:\n      FRONTEND_TITLE: Shipyard Shop (dev)\n", "")
    assert sorted(render(shop.root, "dev").services) == ["catalog"]


@pytest.mark.parametrize("overlay", ["  catalog:\n", "  catalog: {}\n", "  catalog: null\n"])
def test_an_empty_overlay_deploys_the_base(shop: ShopCopy, overlay: str) -> None:
    shop.edit(DEV, "  catalog:\n    endpoint: {port: 8101}\n", overlay)
    catalog = render(shop.root, "dev").services["catalog"]
    assert catalog.endpoint.port is None and catalog.replicas == 1


def test_defaults_fill_what_is_not_written(shop: ShopCopy) -> None:
    orders = render(shop.root, "dev").services["orders"]
    assert orders.replicas == 1
    assert orders.routing.idle_timeout == 300.0
    assert orders.health.liveness.interval == 10.0 and orders.health.liveness.timeout == 2.0
    assert orders.strategy.type == "rolling" and orders.strategy.rolling.max_surge == "25%"


def test_snake_case_keys_are_not_accepted(shop: ShopCopy) -> None:
    shop.edit(CATALOG, "  startupTimeout: 10s", "  startup_timeout: 10s")
    assert_problems(check(shop.root), [Expect(CATALOG, 19, "health.startup_timeout", "did you mean `startupTimeout`?")])


def test_an_unknown_environment(shop: ShopCopy) -> None:
    assert_problems(check(shop.root, "prd"), [Expect("environments", 1, "", "unknown environment `prd` (defined: dev, "
                                                                          "prod); did you mean `prod`?")])
    with pytest.raises(SpecError):
        render(shop.root, "staging")


def test_check_of_one_environment_reports_only_its_problems(shop: ShopCopy) -> None:
    shop.edit(PROD, "replicas: 2", "replicas: -2")
    assert check(shop.root, "dev") == []
    assert len(check(shop.root, "prod")) == 1


def test_a_broken_base_is_not_also_reported_as_an_unknown_service(shop: ShopCopy) -> None:
    shop.edit(CATALOG, "replicas: 1", "replicas: [1")
    assert_problems(check(shop.root), [Expect(CATALOG, 9, "", "YAML syntax")])


def test_a_broken_environment_is_not_also_reported_as_missing(shop: ShopCopy) -> None:
    shop.edit(DEV, "kind: Environment", "kind: Environmnet")
    expected = [Expect(DEV, 3, "kind", "expected `kind: Environment`")]
    assert_problems(check(shop.root), expected)
    assert_problems(check(shop.root, "dev"), expected)


def test_every_problem_of_the_project_is_reported_at_once(shop: ShopCopy) -> None:
    shop.edit(CATALOG, "replicas: 1", "replcas: 1")                            # base: unknown field
    shop.edit(FRONTEND, "needs: [catalog, orders]", "needs: [catalog, order]")  # base: unknown service
    use_paths(shop.root, ("orders",))
    shop.edit(ORDERS, "path: apps/orders", "path: ../orders")                  # base: artifact escaping
    shop.edit(DEV, "port: 8102", "port: 8100")                                 # dev: one port, two services
    shop.edit(PROD, "  orders:\n", "  orders:\n    name: ord\n")              # prod: overlay renaming
    shop.edit(PROD, "interval: 10s", "interval: 0s")                           # prod: zero interval
    shop.edit(PROD, "steps: [10, 50, 100]", "steps: [10, 50]")                 # prod: steps not ending at 100
    shop.edit(PROD, "replicas: 2", "replicas: two")                            # prod: wrong type
    shop.write("environments/qa.yaml", "apiVersion: shipyard/v1\nkind: Environment\nname: qa\nservices: {x: {}\n")
    in_any = [
        Expect(CATALOG, 8, "replcas", "did you mean `replicas`?"),
        Expect("environments/qa.yaml", 5, "", "YAML syntax"),
        # in prod too, although prod's frontend has another error (its replicas): a typo hides no other problem
        Expect(FRONTEND, 8, "needs[1]", "unknown service `order`; did you mean `orders`?"),
    ]
    in_dev = [
        Expect(ORDERS, 6, "artifact.path", "inside the project"),
        Expect(DEV, 9, "services.orders.endpoint.port", "port 8100 is already the endpoint of `frontend`"),
    ]
    in_prod = [
        Expect(PROD, 16, "services.catalog.strategy.canary.steps", "the last step must be 100"),
        Expect(PROD, 17, "services.catalog.strategy.canary.interval", "greater than 0"),
        Expect(PROD, 25, "services.orders.name", "cannot be changed"),
        Expect(PROD, 34, "services.frontend.replicas", "valid integer"),
    ]
    assert_problems(check(shop.root), in_any + in_dev + in_prod)
    with pytest.raises(SpecError) as raised:
        render(shop.root, "prod")
    assert_problems(raised.value.problems, in_any + in_prod)


def test_checks_across_services_include_services_with_other_errors(shop: ShopCopy) -> None:
    shop.edit(CATALOG, "replicas: 1", "replcas: 1")
    shop.edit(DEV, "port: 8102", "port: 8101")
    assert_problems(check(shop.root, "dev"), [
        Expect(CATALOG, 8, "replcas", "did you mean `replicas`?"),
        Expect(DEV, 9, "services.orders.endpoint.port", "port 8101 is already the endpoint of `catalog`"),
    ])


def test_a_field_in_error_takes_no_part_in_the_checks_across_services(shop: ShopCopy) -> None:
    shop.edit(DEV, "port: 8101}", "port: 8100x}")        # catalog's port is wrong: no clash reported with it
    shop.edit(CATALOG, 'version: "1.0.0"', "version: [1]")  # and so is a field without a default
    problems = check(shop.root, "dev")
    assert sorted(p.field for p in problems) == ["services.catalog.endpoint.port", "version"], problems


def test_two_errors_in_one_list_still_leave_the_service_in_the_checks_across_services(shop: ShopCopy) -> None:
    shop.edit(FRONTEND, "needs: [catalog, orders]", "needs: [[catalog], [orders]]")
    shop.edit(DEV, "port: 8102", "port: 8100")
    problems = check(shop.root, "dev")
    assert sorted(p.field for p in problems) == ["needs[0]", "needs[1]", "services.orders.endpoint.port"], problems
    assert any("port 8100 is already the endpoint of `frontend`" in str(p) for p in problems)
