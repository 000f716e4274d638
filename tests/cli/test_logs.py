"""Reading an instance's logs across the files its log writer rotated them into."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shipyard.cli.logs import follow_logs, rotated_files, tail_lines
from shipyard.runtime.logwriter import RotatingFile


def _write_rotated(path: Path, lines: int, max_bytes: int = 60, backups: int = 3) -> RotatingFile:
    target = RotatingFile(str(path), max_bytes, backups)
    for n in range(lines):
        target.write(f"line {n:03d}\n".encode())
    return target


def test_tail_reads_back_across_rotated_files_oldest_first(tmp_path: Path):
    path = tmp_path / "stdout.log"
    _write_rotated(path, 26).close()  # 9 bytes a line, 6 lines a file, 4 files kept: lines 0-5 dropped
    assert [p.name for p in rotated_files(path)] == ["stdout.log.3", "stdout.log.2", "stdout.log.1", "stdout.log"]
    assert tail_lines(path, 100) == [f"line {n:03d}" for n in range(6, 26)]
    assert tail_lines(path, 8) == [f"line {n:03d}" for n in range(18, 26)]
    assert tail_lines(tmp_path / "missing.log", 5) == []


def test_follow_continues_across_a_rotation_without_losing_a_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "stdout.log"
    writer = _write_rotated(path, 3)
    done = threading.Event()
    follower = threading.Thread(target=lambda: _follow_until(done, [("x", path)]))
    follower.start()
    try:
        for n in range(3, 30):  # three rotations while following
            writer.write(f"line {n:03d}\n".encode())
            if n % 5 == 0:
                done.wait(0.3)  # let the follower see each stage (it polls every 0.25 s)
    finally:
        done.wait(0.6)
        done.set()
        follower.join()
        writer.close()
    assert capsys.readouterr().out.splitlines() == [f"line {n:03d}" for n in range(30)]


def _follow_until(done: threading.Event, files: list[tuple[str, Path]]) -> None:
    import shipyard.cli.logs as logs

    original = logs.time.sleep

    def sleep(seconds: float) -> None:
        if done.is_set():
            raise _Stop
        original(seconds)

    logs.time.sleep = sleep  # type: ignore[assignment]
    try:
        follow_logs(files, 100, True)
    except _Stop:
        pass
    finally:
        logs.time.sleep = original  # type: ignore[assignment]


class _Stop(Exception):
    pass
