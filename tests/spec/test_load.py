"""Table tests of the loader: each kind of problem a single file can have, at its exact file, line and field."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.spec.load import load_project

from .conftest import ShopCopy
from .expect import Expect, assert_problems

Edit = Callable[[ShopCopy], None]

CATALOG = "services/catalog.yaml"
DEV = "environments/dev.yaml"


def edit(file: str, old: str, new: str) -> Edit:
    return lambda shop: shop.edit(file, old, new)


def write(file: str, text: str) -> Edit:
    return lambda shop: shop.write(file, text)


def copy(source: str, target: str) -> Edit:
    return lambda shop: shop.write(target, shop.read(source))


CASES = [
    # unknown fields, with did-you-mean
    pytest.param(edit(CATALOG, "replicas: 1", "replcas: 1"),
                 Expect(CATALOG, 8, "replcas", "unknown field `replcas`; did you mean `replicas`?"),
                 id="unknown field, did you mean"),
    pytest.param(edit(CATALOG, "gracePeriod: 5s", "gracePeriode: 5s"),
                 Expect(CATALOG, 21, "stop.gracePeriode", "did you mean `gracePeriod`?"), id="nested unknown field"),
    pytest.param(edit(CATALOG, "replicas: 1", "grace_period: 1"),
                 Expect(CATALOG, 8, "grace_period", "unknown field `grace_period`"), id="unknown field, no hint"),
    pytest.param(edit(CATALOG, "  startupTimeout: 10s", "  startup_timeout: 10s"),
                 Expect(CATALOG, 19, "health.startup_timeout", "did you mean `startupTimeout`?"),
                 id="snake_case key hints the camelCase one"),
    pytest.param(edit(DEV, "services:", "servics:"),
                 Expect(DEV, 5, "servics", "did you mean `services`?"), id="unknown field in an environment"),
    # wrong types
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: many"),
                 Expect(CATALOG, 8, "replicas", "valid integer"), id="wrong type: integer"),
    pytest.param(edit(CATALOG, "  image: catalog ", "  image: [catalog] "),
                 Expect(CATALOG, 6, "artifact.image", "valid string"), id="wrong type: list for a string"),
    pytest.param(edit(CATALOG, "  # the inner loop", "  command: python3 app.py\n  # the inner loop"),
                 Expect(CATALOG, 7, "artifact.command", "valid list"), id="wrong type: list"),
    pytest.param(edit(CATALOG, 'version: "1.0.0"', "version: 1.0"),
                 Expect(CATALOG, 4, "version", "quote the value"), id="wrong type: number for a string"),
    pytest.param(edit(CATALOG, "ingress:\n  host: catalog.shop.localhost", "ingress: catalog.shop.localhost"),
                 Expect(CATALOG, 9, "ingress", "valid dictionary"), id="wrong type: scalar for a mapping"),
    pytest.param(edit(CATALOG, "memory: 64Mi", "memory: 64MB"),
                 Expect(CATALOG, 15, "resources.memory", "invalid memory '64MB'"), id="bad memory quantity"),
    pytest.param(edit(CATALOG, "cpu: 100m", "cpu: 1 core"),
                 Expect(CATALOG, 14, "resources.cpu", "invalid cpu '1 core'"), id="bad cpu quantity"),
    pytest.param(edit(CATALOG, "startupTimeout: 10s", "startupTimeout: 10 seconds"),
                 Expect(CATALOG, 19, "health.startupTimeout", "invalid duration '10 seconds'"), id="bad duration"),
    pytest.param(edit(CATALOG, "name: catalog", "name: Catalog_1"),
                 Expect(CATALOG, 3, "name", "should match pattern"), id="name not a DNS label"),
    # out of range
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: -1"),
                 Expect(CATALOG, 8, "replicas", "must be at least 0 (got -1)"), id="negative replicas"),
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: 5000"),
                 Expect(CATALOG, 8, "replicas", "must be at most 1000"), id="too many replicas"),
    pytest.param(edit(CATALOG, "interval: 500ms", "interval: 0s"),
                 Expect(CATALOG, 17, "health.readiness.interval", "must be greater than 0 (got '0s')"),
                 id="zero interval"),
    pytest.param(edit(CATALOG, "cpu: 100m", "cpu: 0m"),
                 Expect(CATALOG, 14, "resources.cpu", "greater than 0"), id="zero cpu"),
    pytest.param(edit(CATALOG, "interval: 500ms", "interval: .inf"),
                 Expect(CATALOG, 17, "health.readiness.interval", "out of range"), id="infinite interval"),
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: 1\nendpoint: {port: 80}"),
                 Expect(CATALOG, 9, "endpoint.port", "at least 1024"), id="privileged port"),
    # missing fields
    pytest.param(edit(CATALOG, 'version: "1.0.0"\n', ""),
                 Expect(CATALOG, 1, "version", "required field is missing"), id="missing required field"),
    pytest.param(edit(CATALOG, "  image: catalog ", "  path: apps/catalog\n  #"),
                 Expect(CATALOG, 5, "artifact.command", "required field is missing"), id="missing nested field"),
    pytest.param(edit(CATALOG, "  host: catalog.shop.localhost", "  host: null"),
                 Expect(CATALOG, 9, "ingress", "needs a host, a path, or both"), id="empty ingress"),
    # duplicate names
    pytest.param(copy(CATALOG, "services/zz-catalog.yaml"),
                 Expect("services/zz-catalog.yaml", 3, "name",
                        "duplicate service name `catalog`: already defined in services/catalog.yaml"),
                 id="duplicate service name"),
    pytest.param(copy(DEV, "environments/dev2.yml"),
                 Expect("environments/dev2.yml", 4, "name", "duplicate environment name `dev`"),
                 id="duplicate environment name"),
    # YAML syntax
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: [1"),
                 Expect(CATALOG, 9, "", "YAML syntax"), id="YAML syntax error"),
    pytest.param(edit(CATALOG, "replicas: 1", "replicas:\t1\n\tx: 2"),
                 Expect(CATALOG, 8, "", "YAML syntax"), id="tab indentation"),
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: 1\nreplicas: 2"),
                 Expect(CATALOG, 9, "", "duplicate key"), id="duplicate key"),
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: *nothing"),
                 Expect(CATALOG, 8, "", "undefined alias"), id="undefined alias"),
    pytest.param(write(CATALOG, ""), Expect(CATALOG, 1, "", "the file is empty"), id="empty file"),
    pytest.param(write(CATALOG, "# only a comment\n"), Expect(CATALOG, 1, "", "the file is empty"),
                 id="only a comment"),
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: 1\n---\nreplicas: 2"),
                 Expect(CATALOG, 1, "", "one YAML document per file, found 2"), id="two documents"),
    pytest.param(write(CATALOG, "- a\n- b\n"), Expect(CATALOG, 1, "", "expected a mapping with `kind: Service`"),
                 id="a list, not a mapping"),
    pytest.param(write(CATALOG, "x: " + "[" * 400 + "]" * 400), Expect(CATALOG, 1, "", "nested too deeply"),
                 id="nested too deeply"),
    pytest.param(write(CATALOG, "\x00\x01"), Expect(CATALOG, 1, "", "YAML syntax: unacceptable character"),
                 id="binary file"),
    # kind and apiVersion
    pytest.param(edit(CATALOG, "kind: Service", "kind: Servce"),
                 Expect(CATALOG, 2, "kind", "expected `kind: Service` in this directory, found `Servce`"),
                 id="wrong kind"),
    pytest.param(edit(DEV, "kind: Environment", "kind: Service"),
                 Expect(DEV, 3, "kind", "expected `kind: Environment`"), id="service in environments/"),
    pytest.param(edit(CATALOG, "kind: Service\n", ""),
                 Expect(CATALOG, 1, "kind", "`kind` is missing"), id="missing kind"),
    pytest.param(edit(CATALOG, "apiVersion: shipyard/v1", "apiVersion: shipyard/v2"),
                 Expect(CATALOG, 1, "apiVersion", "expected `apiVersion: shipyard/v1`, got 'shipyard/v2'"),
                 id="wrong apiVersion"),
    # progressive delivery entries the engine could not carry out
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: 1\nstrategy: {canary: {match: [{header: {name: x-c}}]}}"),
                 Expect(CATALOG, 9, "strategy.canary.match[0].header",
                        "a header match has exactly one of exact, prefix or regex"), id="header match without rule"),
    pytest.param(edit(CATALOG, "replicas: 1", "replicas: 1\nstrategy: {canary: {analysis: [{metric: latencyP99}]}}"),
                 Expect(CATALOG, 9, "strategy.canary.analysis[0]", "set min, max or both"), id="threshold unbounded"),
    pytest.param(edit(CATALOG, "replicas: 1",
                      "replicas: 1\nstrategy: {canary: {analysis: [{metric: successRate, min: 99, max: 90}]}}"),
                 Expect(CATALOG, 9, "strategy.canary.analysis[0]", "min 99 is greater than max 90"),
                 id="threshold min above max"),
    # the environment list
    pytest.param(write("environments/staging.yaml", "apiVersion: shipyard/v1\nkind: Environment\nname: prd\n"),
                 Expect("environments/staging.yaml", 3, "name",
                        "environment `prd` is not listed in shipyard.yaml environments; did you mean `prod`?"),
                 id="environment not listed"),
    pytest.param(edit("shipyard.yaml", "[dev, prod]", "[dev, staging, prod]"),
                 Expect("shipyard.yaml", 5, "environments[1]", "no environments/staging.yaml defines"),
                 id="listed environment without a file"),
    pytest.param(edit("shipyard.yaml", "[dev, prod]", "[dev, prod, dev]"),
                 Expect("shipyard.yaml", 5, "environments[2]", "listed twice"), id="environment listed twice"),
    pytest.param(edit("shipyard.yaml", "[dev, prod]", "[]\n"),
                 Expect("shipyard.yaml", 5, "environments", "at least 1 item"), id="no environments"),
    pytest.param(lambda shop: shop.remove("shipyard.yaml"),
                 Expect("shipyard.yaml", 1, "", "missing: a project needs shipyard.yaml"), id="no shipyard.yaml"),
]


@pytest.mark.parametrize(("breaking", "expected"), CASES)
def test_one_problem(shop: ShopCopy, breaking: Edit, expected: Expect) -> None:
    breaking(shop)
    assert_problems(load_project(shop.root).problems, [expected])


def test_the_example_loads_without_problems(shop: ShopCopy) -> None:
    source = load_project(shop.root)
    assert source.problems == []
    assert source.project is not None and source.project.environment_names == ["dev", "prod"]
    assert sorted(source.services) == ["catalog", "frontend", "orders"]
    assert sorted(source.environments) == ["dev", "prod"]


def test_yml_files_are_read_and_other_files_ignored(shop: ShopCopy) -> None:
    shop.write("services/orders.yml", shop.read("services/orders.yaml"))
    shop.remove("services/orders.yaml")
    shop.write("services/README.md", "not: [yaml")
    shop.write("services/notes.txt", "::")
    assert sorted(load_project(shop.root).services) == ["catalog", "frontend", "orders"]


def test_merge_keys_and_anchors_are_accepted(shop: ShopCopy) -> None:
    shop.edit(CATALOG, "stop:\n  gracePeriod: 5s", "stop: &stop\n  gracePeriod: 5s\nroutine: {<<: *stop}")
    # `routine` is unknown; the merged-in key has no position of its own and takes the map's.
    assert_problems(load_project(shop.root).problems, [Expect(CATALOG, 22, "routine", "unknown field")])


def test_problems_of_every_file_are_reported_together(shop: ShopCopy) -> None:
    shop.edit(CATALOG, "replicas: 1", "replcas: 1")
    shop.edit("services/orders.yaml", "kind: Service", "kind: Servise")
    shop.edit("services/frontend.yaml", "path: /\n", "path: [/\n")
    shop.edit(DEV, "name: dev", "name: develop")
    shop.edit("shipyard.yaml", "[dev, prod]", "[dev, prod, qa]")
    assert_problems(load_project(shop.root).problems, [
        Expect(CATALOG, 8, "replcas", "did you mean `replicas`?"),
        Expect("services/orders.yaml", 2, "kind", "found `Servise`"),
        Expect("services/frontend.yaml", 11, "", "YAML syntax"),
        Expect(DEV, 4, "name", "environment `develop` is not listed"),
        Expect("shipyard.yaml", 5, "environments[0]", "no environments/dev.yaml defines environment `dev`"),
        Expect("shipyard.yaml", 5, "environments[2]", "no environments/qa.yaml"),
    ])
