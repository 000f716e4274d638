"""Admission against the machine: which new instances fit, and the condition when some do not.

Pure decisions only. The machine-wide ledger that several control planes share lives in
state/ledger.py; what it says about the *other* environments enters here as anything `Held`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from shipyard.engine.model import Capacity, Condition
from shipyard.spec.units import format_cpu, format_memory, format_memory_approx


class Held(Protocol):
    """What another environment on this machine holds (a ledger entry)."""

    @property
    def cpu(self) -> float: ...

    @property
    def memory(self) -> int: ...


def after_others(capacity: Capacity, others: Iterable[Held]) -> Capacity:
    """The share of the machine left to this environment once the others' reservations are subtracted."""
    held = list(others)
    return Capacity(cpu=max(0.0, round(capacity.cpu - sum(h.cpu for h in held), 6)),
                    memory=max(0, capacity.memory - sum(h.memory for h in held)))


def new_shortfalls(before: Iterable[Condition], after: Iterable[Condition]) -> list[Condition]:
    """Schedulable conditions of this pass that the previous pass did not have (one event each, not one per pass).

    A shortfall is the same while its service and reason are: a changing "free" figure is not news.
    """
    seen = {(c.object, c.reason) for c in before if c.type == "Schedulable"}
    return [c for c in after if c.type == "Schedulable" and (c.object, c.reason) not in seen]


@dataclass
class Budget:
    """What is left of the machine after the instances already placed."""

    cpu: float
    memory: int
    start_slots: int = 1_000_000  # new instances that may begin starting in this pass

    @classmethod
    def of(cls, capacity: Capacity, reserved: list[tuple[float, int]]) -> "Budget":
        return cls(capacity.cpu - sum(c for c, _ in reserved), capacity.memory - sum(m for _, m in reserved))

    def admit(self, service: str, wanted: int, cpu: float, memory: int) -> tuple[int, Condition | None]:
        """How many of `wanted` instances fit; a condition explains the ones that do not."""
        by_memory, by_cpu = self._room(wanted, cpu, memory)
        fits = max(0, min(wanted, by_memory, by_cpu))
        self.cpu -= fits * cpu
        self.memory -= fits * memory
        started = min(fits, self.start_slots)  # the rest start in a later pass, once some are ready
        self.start_slots -= started
        if fits == wanted:
            return started, None
        return started, self._shortfall(service, wanted - fits, cpu, memory, by_memory < wanted and by_memory <= by_cpu)

    def reserve(self, service: str, count: int, cpu: float, memory: int, what: str = "") -> Condition | None:
        """Set aside `count` instances that will start later (all or nothing); a condition if they do not fit.

        `what` says what they are for, e.g. "its canary" — the message then names the whole need.
        """
        if count <= 0:
            return None
        by_memory, by_cpu = self._room(count, cpu, memory)
        if min(by_memory, by_cpu) >= count:
            self.cpu -= count * cpu
            self.memory -= count * memory
            return None
        return self._shortfall(service, count, cpu, memory, by_memory < count and by_memory <= by_cpu, what)

    def _room(self, wanted: int, cpu: float, memory: int) -> tuple[int, int]:
        by_memory = int(self.memory // memory) if memory > 0 else wanted
        by_cpu = int((self.cpu + 1e-9) // cpu) if cpu > 0 else wanted
        return by_memory, by_cpu

    def _shortfall(self, service: str, missing: int, cpu: float, memory: int, memory_bound: bool,
                   what: str = "") -> Condition:
        purpose = f" for {what}" if what else ""
        if memory_bound:
            free = format_memory_approx(max(self.memory, 0))
            return Condition("Schedulable", "False", "InsufficientMemory",
                             f"{service} needs {missing} × {format_memory(memory)}{purpose}, {free} free", service)
        free_cpu = format_cpu(max(round(self.cpu, 3), 0))
        return Condition("Schedulable", "False", "InsufficientCPU",
                         f"{service} needs {missing} × {format_cpu(cpu)} CPU{purpose}, {free_cpu} free", service)
