"""Size-capped instance logs: the rotating file, the pump, and a detached writer that outlives its caller."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.runtime import cgroups, procfs
from shipyard.runtime.detach import LogRotation, setsid_with_fork, spawn_detached
from shipyard.runtime.logwriter import RotatingFile, pump, rotated_paths
from tests.controlplane import wait_for

METHODS = [pytest.param("setsid", marks=pytest.mark.skipif(setsid_with_fork() is None, reason="no setsid")),
           "python"]


def _contents(path: Path, backups: int) -> list[bytes]:
    return [Path(p).read_bytes() for p in rotated_paths(str(path), backups) if Path(p).exists()]


def test_a_file_rotates_before_a_write_would_pass_the_cap_and_drops_the_oldest(tmp_path: Path):
    target = RotatingFile(str(tmp_path / "out.log"), max_bytes=10, backups=2)
    for chunk in (b"aaaa\n", b"bbbb\n", b"cccc\n", b"dddd\n", b"eeee\n", b"ffff\n", b"gggg\n"):
        target.write(chunk)
    target.close()
    assert _contents(tmp_path / "out.log", 2) == [b"cccc\ndddd\n", b"eeee\nffff\n", b"gggg\n"]
    assert not (tmp_path / "out.log.3").exists()


def test_without_backups_the_file_starts_over(tmp_path: Path):
    target = RotatingFile(str(tmp_path / "out.log"), max_bytes=8, backups=0)
    for chunk in (b"one\n", b"two\n", b"three\n"):
        target.write(chunk)
    target.close()
    assert (tmp_path / "out.log").read_bytes() == b"three\n"


def test_an_existing_file_counts_towards_the_cap(tmp_path: Path):
    (tmp_path / "out.log").write_bytes(b"123456789\n")
    target = RotatingFile(str(tmp_path / "out.log"), max_bytes=12, backups=1)
    target.write(b"next\n")
    target.close()
    assert _contents(tmp_path / "out.log", 1) == [b"123456789\n", b"next\n"]


def test_pump_copies_every_pipe_until_each_ends(tmp_path: Path):
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.write(out_w, b"x" * 50_000)
    os.close(out_w)
    os.write(err_w, b"oops\n")
    os.close(err_w)
    out, err = RotatingFile(str(tmp_path / "o"), 20_000, 5), RotatingFile(str(tmp_path / "e"), 20_000, 5)
    pump({out_r: out, err_r: err})
    assert b"".join(_contents(tmp_path / "o", 5)) == b"x" * 50_000
    assert [len(part) for part in _contents(tmp_path / "o", 5)] == [20_000, 20_000, 10_000]
    assert (tmp_path / "e").read_bytes() == b"oops\n"


@pytest.mark.parametrize("method", METHODS)
def test_a_detached_process_logs_through_a_writer_that_caps_its_files(tmp_path: Path, method: str):
    # 400 numbered lines of 100 bytes = 40,000 bytes through files of at most 8,000 bytes, 3 of them kept
    script = 'i=0; while [ $i -lt 400 ]; do printf "%099d\\n" $i; i=$((i+1)); done; echo bye >&2; echo st >&3'
    detached = spawn_detached(["/bin/sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path),
                              stdout_path=str(tmp_path / "stdout.log"), stderr_path=str(tmp_path / "stderr.log"),
                              status_path=str(tmp_path / "status"), method=method,
                              rotate=LogRotation(max_bytes=8_000, backups=2))
    wait_for(lambda: not procfs.is_running(detached.pid, None), timeout=20, what="the script to end")
    wait_for(lambda: (tmp_path / "stderr.log").read_text() == "bye\n", timeout=10, what="its stderr")
    assert (tmp_path / "status").read_text() == "st\n"  # fd 3 still reaches the target
    expected = b"".join(b"%099d\n" % n for n in range(400))
    kept = wait_for(lambda: (lambda parts: parts if sum(map(len, parts)) and parts[-1].endswith(b"%099d\n" % 399)
                             else None)(_contents(tmp_path / "stdout.log", 2)), timeout=10, what="the last line")
    assert len(kept) == 3 and all(len(part) <= 8_000 for part in kept)
    joined = b"".join(kept)
    assert expected.endswith(joined) and len(joined) >= 2 * 8_000  # the newest output, in order, nothing lost
    assert not (tmp_path / "stdout.log.3").exists()


def test_a_program_that_cannot_run_says_why_in_its_stderr_log(tmp_path: Path):
    detached = spawn_detached(["/nonexistent/program"], env={}, cwd=str(tmp_path),
                              stdout_path=str(tmp_path / "o"), stderr_path=str(tmp_path / "e"), rotate=LogRotation())
    wait_for(lambda: not procfs.is_running(detached.pid, None), what="the launcher to end")
    wait_for(lambda: "cannot execute /nonexistent/program" in (tmp_path / "e").read_text(), what="the reason")


def test_rotation_settings_come_from_the_environment():
    assert LogRotation.from_env({}) == LogRotation(10 * 2**20, 2)
    assert LogRotation.from_env({"SHIPYARD_LOG_MAX_BYTES": "1000", "SHIPYARD_LOG_FILES": "5"}) == LogRotation(1000, 4)
    with pytest.raises(Exception, match="must be integers"):
        LogRotation.from_env({"SHIPYARD_LOG_MAX_BYTES": "10Mi"})


def _writers(run_dir: Path) -> set[int]:
    """Log writer processes of one instance (found by their command line)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"logwriter.py" in cmdline and str(run_dir).encode() in cmdline:
            found.add(int(entry.name))
    return found


def test_an_instance_logs_rotate_and_the_writer_ends_with_it(lab, cgroup_parent: str):
    from shipyard.runtime.process import ProcessDriver

    driver = ProcessDriver(cgroup_parent=cgroup_parent, log_rotation=LogRotation(max_bytes=4_000, backups=1))
    spec = lab.spec(["/bin/sh", "-c", 'i=0; while [ $i -lt 200 ]; do printf "%049d\\n" $i; i=$((i+1)); done; '
                                      'echo done; exec sleep 60'])
    handle = lab.start(spec, driver)
    stdout = Path(spec.run_dir) / "stdout.log"
    wait_for(lambda: stdout.exists() and stdout.read_bytes().endswith(b"done\n"), what="the last line")
    assert stdout.stat().st_size <= 4_000 and Path(f"{stdout}.1").stat().st_size <= 4_000
    assert not Path(f"{stdout}.2").exists()
    writers = _writers(Path(spec.run_dir))
    assert len(writers) == 1
    writer = writers.pop()
    assert os.getsid(writer) == writer and os.getsid(writer) != os.getsid(handle.pid)  # out of the instance's session
    assert writer not in cgroups.members(handle.cgroups)  # nor in its cgroups: not killed with it, not its memory
    driver.kill_all(handle)
    wait_for(lambda: not procfs.is_running(writer, None), what="the writer to end after the instance")
