"""Matching Problems against expectations, with a failure message that lists what was reported."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.errors import Problem


@dataclass(frozen=True)
class Expect:
    """A problem as a test expects it: exact file, line and field; a fragment of the message."""

    file: str
    line: int
    field: str
    fragment: str

    def matches(self, problem: Problem) -> bool:
        return (problem.file, problem.line, problem.field) == (self.file, self.line, self.field) \
            and self.fragment in problem.message


def assert_problems(problems: list[Problem], expected: list[Expect]) -> None:
    """Every expectation is met by one problem, and nothing else was reported."""
    report = "\n".join(f"  {p}" for p in problems) or "  (none)"
    assert len(problems) == len(expected), f"expected {len(expected)} problem(s), got:\n{report}"
    unmatched = [e for e in expected if not any(e.matches(p) for p in problems)]
    assert not unmatched, f"not reported: {unmatched}\nreported:\n{report}"
    for problem in problems:
        assert problem.column >= 1, problem
