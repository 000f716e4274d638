"""Admission decisions: budgets, reservations, the other environments' share, shortfalls as news."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.engine.capacity import Budget, after_others, new_shortfalls
from shipyard.engine.model import Capacity, Condition

MiB = 2**20


@dataclass(frozen=True)
class Other:
    cpu: float
    memory: int


def test_a_reservation_is_all_or_nothing_and_names_its_purpose() -> None:
    budget = Budget(cpu=1.0, memory=1024 * MiB)
    assert budget.reserve("svc", 3, 0.25, 64 * MiB, "its canary") is None
    assert (budget.cpu, budget.memory) == (0.25, 832 * MiB)
    refused = budget.reserve("svc", 2, 0.25, 64 * MiB, "its canary")
    assert refused == Condition("Schedulable", "False", "InsufficientCPU",
                                "svc needs 2 × 250m CPU for its canary, 250m free", "svc")
    assert (budget.cpu, budget.memory) == (0.25, 832 * MiB)  # nothing taken
    assert budget.reserve("svc", 0, 9.0, 9 * MiB) is None


def test_memory_is_named_when_memory_is_what_runs_out() -> None:
    refused = Budget(cpu=8.0, memory=100 * MiB).reserve("svc", 2, 0.1, 64 * MiB)
    assert refused is not None and refused.reason == "InsufficientMemory"
    assert refused.message == "svc needs 2 × 64Mi, 100Mi free"


def test_the_other_environments_holdings_come_off_the_machine() -> None:
    machine = Capacity(cpu=2.0, memory=4096 * MiB)
    assert after_others(machine, [Other(0.3, 192 * MiB), Other(0.8, 896 * MiB)]) == Capacity(0.9, 3008 * MiB)
    assert after_others(machine, [Other(3.0, 8192 * MiB)]) == Capacity(0.0, 0)  # never below nothing


def test_a_shortfall_is_news_once_while_its_service_and_reason_stay() -> None:
    first = Condition("Schedulable", "False", "InsufficientCPU", "svc needs 1 × 100m CPU, 50m free", "svc")
    same_but_fewer_free = Condition("Schedulable", "False", "InsufficientCPU", "svc needs 1 × 100m CPU, 0 free", "svc")
    memory = Condition("Schedulable", "False", "InsufficientMemory", "svc needs 1 × 64Mi, 1Mi free", "svc")
    other = Condition("Available", "False", "InstancesNotReady", "svc: 0/1", "svc")
    assert new_shortfalls([], [first, other]) == [first]
    assert new_shortfalls([first], [same_but_fewer_free]) == []
    assert new_shortfalls([first], [memory]) == [memory]
    assert new_shortfalls([], []) == []
    assert new_shortfalls([first], []) == [] and new_shortfalls([], [first]) == [first]  # gone, then back: news again
