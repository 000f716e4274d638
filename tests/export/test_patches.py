"""Table tests of the overlay patches: exactly the differences, merged the way kustomize merges them."""

from __future__ import annotations

import pytest

from shipyard.export.patches import delete_patch, diff, object_patch

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "labels": {"x": "1"}},
              "spec": {"replicas": 1, "template": {"spec": {"containers": [
                  {"name": "a", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}}


@pytest.mark.parametrize("base, target, keyed, expected", [
    ({"a": 1}, {"a": 1}, True, None),
    ({"a": 1}, {"a": 2}, True, {"a": 2}),
    ({"a": 1, "b": 2}, {"a": 1}, True, {"b": None}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}, True, {"a": {"c": 3}}),
    ([1, 2], [1, 3], True, [1, 3]),
    ([{"name": "x", "v": 1}, {"name": "y", "v": 1}], [{"name": "x", "v": 1}, {"name": "y", "v": 2}], True,
     [{"name": "y", "v": 2}]),
    ([{"name": "x", "v": 1}], [{"name": "y", "v": 1}], True, [{"name": "y", "v": 1}, {"name": "x", "$patch": "delete"}]),
    ([{"name": "x", "v": 1}], [{"name": "x", "v": 2}], False, [{"name": "x", "v": 2}]),  # CRDs: lists replace
    ([{"name": "x", "v": 1}, {"name": "y"}], [{"name": "x", "v": 2}, {"name": "y"}], False,
     [{"name": "x", "v": 2}, {"name": "y"}]),
])
def test_diff(base, target, keyed, expected):
    assert diff(base, target, keyed) == expected


def test_an_object_patch_names_the_object_and_carries_only_the_change():
    target = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": 3}}
    assert object_patch(DEPLOYMENT, target) == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "metadata": {"name": "a"}, "spec": {"replicas": 3}}
    assert object_patch(DEPLOYMENT, DEPLOYMENT) is None


def test_one_changed_env_var_patches_that_var_only():
    container = DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]
    changed = {**container, "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "9"}]}
    target = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "template": {"spec": {"containers": [changed]}}}}
    patch = object_patch(DEPLOYMENT, target)
    assert patch["spec"]["template"]["spec"]["containers"] == [{"name": "a", "env": [{"name": "B", "value": "9"}]}]


def test_a_delete_patch_removes_the_whole_object():
    assert delete_patch(DEPLOYMENT) == {"$patch": "delete", "apiVersion": "apps/v1", "kind": "Deployment",
                                        "metadata": {"name": "a"}}
