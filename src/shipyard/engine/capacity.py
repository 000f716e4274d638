"""Admission against the machine: which new instances fit, and the condition when some do not."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.engine.model import Capacity, Condition
from shipyard.spec.units import format_cpu, format_memory, format_memory_approx


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
        by_memory = int(self.memory // memory) if memory > 0 else wanted
        by_cpu = int((self.cpu + 1e-9) // cpu) if cpu > 0 else wanted
        fits = max(0, min(wanted, by_memory, by_cpu))
        self.cpu -= fits * cpu
        self.memory -= fits * memory
        started = min(fits, self.start_slots)  # the rest start in a later pass, once some are ready
        self.start_slots -= started
        if fits == wanted:
            return started, None
        missing = wanted - fits
        fits = started
        if by_memory < wanted and by_memory <= by_cpu:
            free = format_memory_approx(max(self.memory, 0))
            return fits, Condition("Schedulable", "False", "InsufficientMemory",
                                   f"{service} needs {missing} × {format_memory(memory)}, {free} free", service)
        free_cpu = format_cpu(max(round(self.cpu, 3), 0))
        return fits, Condition("Schedulable", "False", "InsufficientCPU",
                               f"{service} needs {missing} × {format_cpu(cpu)} CPU, {free_cpu} free", service)
