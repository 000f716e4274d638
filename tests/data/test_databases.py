"""Which variables a service's databases are given in (pure)."""

from __future__ import annotations

from shipyard.data.databases import engine_of, grants
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


def test_redis_databases_get_redis_url_by_the_same_rule_beside_postgres() -> None:
    service = Service.model_validate(probe_service("orders", databases=[
        {"name": "orders"}, {"name": "cache", "engine": "redis"}, {"name": "rate-limits", "engine": "redis"}]))
    assert [(g.variable, g.database) for g in grants(service)] == [
        ("DATABASE_URL", "orders"),
        ("REDIS_URL", "cache"), ("CACHE_REDIS_URL", "cache"), ("RATE_LIMITS_REDIS_URL", "rate_limits")]
    assert [engine_of(g.variable) for g in grants(service)] == ["postgres", "redis", "redis", "redis"]


def test_a_database_named_like_the_other_engine_keeps_its_engine() -> None:
    assert engine_of("REDIS_DATABASE_URL") == "postgres" and engine_of("DATABASE_REDIS_URL") == "redis"
