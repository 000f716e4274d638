"""Which variables a service's databases are given in (pure)."""

from __future__ import annotations

from shipyard.data.databases import grants
from shipyard.spec.models import Service
from tests.projects import probe_service


def _service(*names: str) -> Service:
    return Service.model_validate(probe_service("order-api", databases=[{"name": n} for n in names]))


def test_one_database_is_database_url() -> None:
    assert [(g.variable, g.database, g.role) for g in grants(_service("orders"))] == \
        [("DATABASE_URL", "orders", "order_api")]


def test_several_databases_each_get_a_named_url_and_the_first_is_also_database_url() -> None:
    assert [(g.variable, g.database) for g in grants(_service("orders", "audit-log"))] == [
        ("DATABASE_URL", "orders"), ("ORDERS_DATABASE_URL", "orders"), ("AUDIT_LOG_DATABASE_URL", "audit_log")]


def test_no_database_no_grant() -> None:
    assert grants(_service()) == []
