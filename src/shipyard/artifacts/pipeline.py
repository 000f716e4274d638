"""A service's pipeline: its stages run fast-first in a sandbox, the artifact built once, the `component`
stage run against that very artifact, and the artifact published with every stage's result.

Order: the stages as declared, except `component`, which needs the artifact and so runs after the
build. The first failure stops the pipeline and nothing is published. Each stage runs under bubblewrap
with the host read-only and only the source directory writable (without bubblewrap: unsandboxed, and
said so). A stage may write JUnit XML to $SHIPYARD_JUNIT_XML; its test counts go into the provenance.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.artifacts import oci
from shipyard.artifacts.build import Built, build
from shipyard.artifacts.descriptor import Stage, load_descriptor
from shipyard.artifacts.errors import ArtifactError
from shipyard.artifacts.pull import apply_layer
from shipyard.artifacts.stores import ArtifactStore, current_digest, moved_tag_warning

COMPONENT = "component"
JUNIT_DIR = ".shipyard"           # scratch dir of a run in the source dir (JUnit files, the component root)
START_TIMEOUT = 20.0
Report = Callable[[str], None]


@dataclass(frozen=True)
class StageResult:
    stage: str
    result: str                 # passed | failed | timeout
    seconds: float
    exit_code: int | None = None
    tests: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"stage": self.stage, "result": self.result, "seconds": self.seconds}
        if self.tests is not None:
            data["tests"] = self.tests
        return data


@dataclass
class PipelineRun:
    name: str = ""
    version: str = ""
    digest: str | None = None
    stages: list[StageResult] = field(default_factory=list)
    failed: str | None = None    # the stage that failed

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest, "failed": self.failed,
                "pipeline": [s.to_dict() for s in self.stages]}


def run_pipeline(source: Path, version: str, store: ArtifactStore, report: Report) -> PipelineRun:
    """Run SOURCE's pipeline and publish VERSION to STORE if every stage passed."""
    source = source.resolve()
    try:
        return _run(source, version, store, report)
    finally:
        shutil.rmtree(source / JUNIT_DIR, ignore_errors=True)   # the stages' scratch dir leaves no trace


def _run(source: Path, version: str, store: ArtifactStore, report: Report) -> PipelineRun:
    descriptor = load_descriptor(source)
    run = PipelineRun(descriptor.name, version)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        report("warning: bubblewrap is not installed: stages run without a sandbox")
    stages = [s for s in descriptor.pipeline.stages if s.name != COMPONENT]
    component = [s for s in descriptor.pipeline.stages if s.name == COMPONENT]
    for stage in stages:
        if not _stage(run, stage, source, bwrap, {}, report):
            return run
    report(f"▶ build {descriptor.name}:{version}")
    started = time.monotonic()
    built = build(source, version, descriptor)
    size = sum(len(layer.blob) for layer in built.layers)
    report(f"✓ build in {time.monotonic() - started:.2f}s ({size} bytes, layers "
           f"{', '.join(oci.sha256(layer.blob)[:19] for layer in built.layers)})")
    for stage in component:
        with _ArtifactUnderTest(built, bwrap, report, source / JUNIT_DIR) as target:
            if not _stage(run, stage, source, bwrap, {"TARGET_URL": target}, report):
                return run
    image = built.image([s.to_dict() for s in run.stages])
    before = current_digest(store, descriptor.name, version)
    run.digest = store.push(descriptor.name, version, image)
    report(f"✓ published {descriptor.name}:{version}@{run.digest} to {store.location}")
    moved = moved_tag_warning(descriptor.name, version, before, run.digest)
    if moved:
        report(moved)
    return run


def _stage(run: PipelineRun, stage: Stage, source: Path, bwrap: str | None, extra: dict[str, str],
           report: Report) -> bool:
    report(f"▶ {stage.name}")
    junit = source / JUNIT_DIR / f"junit-{stage.name}.xml"
    junit.parent.mkdir(exist_ok=True)
    junit.unlink(missing_ok=True)
    env = _stage_env(source, stage, junit, extra)
    command = stage.command if isinstance(stage.command, list) else ["/bin/sh", "-c", stage.command]
    argv = _sandboxed(command, source, bwrap)
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=source, env=env, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace")
    output = ""
    try:
        output, _ = process.communicate(timeout=stage.timeout)
        result = "passed" if process.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        result = "timeout"
    seconds = round(time.monotonic() - started, 2)
    tests = junit_counts(junit)
    outcome = StageResult(stage.name, result, seconds, process.returncode, tests)
    run.stages.append(outcome)
    counts = f" ({tests['tests']} tests, {tests['failures'] + tests['errors']} failed)" if tests else ""
    if result == "passed":
        report(f"✓ {stage.name} passed in {seconds:.2f}s{counts}")
        return True
    for line in output.rstrip().splitlines()[-20:]:
        report(f"  {line}")
    why = f"timed out after {stage.timeout:g}s" if result == "timeout" else f"exit {process.returncode}"
    report(f"✗ {stage.name} failed ({why}) in {seconds:.2f}s{counts}")
    run.failed = stage.name
    return False


def _stage_env(source: Path, stage: Stage, junit: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
    env.update(HOME="/tmp", SHIPYARD_STAGE=stage.name, SHIPYARD_SOURCE_DIR=str(source),
               SHIPYARD_JUNIT_XML=str(junit), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def _sandboxed(command: list[str], source: Path, bwrap: str | None, writable: Path | None = None) -> list[str]:
    """The host read-only, a private /tmp, /dev and /proc, and only WRITABLE (default: SOURCE) writable."""
    if bwrap is None:
        return command
    target = str(writable or source)
    readonly = ["--ro-bind", str(source), str(source)] if writable else []   # seen again under a private /tmp
    return [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", *readonly,
            "--bind", target, target, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            "--chdir", str(source), "--", *command]


def junit_counts(path: Path) -> dict[str, int] | None:
    """tests/failures/errors/skipped summed over a JUnit XML file's test suites; None without one."""
    if not path.is_file():
        return None
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError:
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, "0") or 0)
    return counts


class _ArtifactUnderTest:
    """The built artifact started in a throwaway sandbox (its own unpacked copy); yields its TARGET_URL."""

    def __init__(self, built: Built, bwrap: str | None, report: Report, work: Path) -> None:
        self.built, self.bwrap, self.report = built, bwrap, report
        self.process: subprocess.Popen[bytes] | None = None
        work.mkdir(parents=True, exist_ok=True)   # not under /tmp: the sandbox has its own /tmp
        self.tmp = Path(tempfile.mkdtemp(prefix="component-", dir=work))

    def __enter__(self) -> str:
        root = self.tmp / "root"
        root.mkdir()
        for layer in self.built.layers:
            apply_layer(root, layer.blob)
        app = root / oci.APP_DIR
        data = self.tmp / "data"
        data.mkdir()
        port = _free_port()
        config = self.built.config["config"]
        env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
        env.update(dict(item.split("=", 1) for item in config.get("Env", []) if "=" in item))
        env.update(HOME="/tmp", PORT=str(port), SHIPYARD_DATA_DIR=str(data), SHIPYARD_ENVIRONMENT="component",
                   SHIPYARD_SERVICE=self.built.descriptor.name,
                   SHIPYARD_VERSION=self.built.annotations.get(oci.VERSION, ""))
        command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
        argv = _sandboxed(command, app, self.bwrap, writable=data)
        self.process = subprocess.Popen(argv, cwd=app, env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        path = self.built.descriptor.health.readiness
        self.report(f"  started {self.built.descriptor.name} for the component stage at {url}")
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(url, path, port):
            if self.process.poll() is not None:
                error = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                self.__exit__(None, None, None)
                raise ArtifactError(f"the artifact exited ({self.process.returncode}) before the component stage: "
                                    f"{error.strip().splitlines()[-1] if error.strip() else 'no output'}")
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise ArtifactError(f"the artifact did not answer on {url} within {START_TIMEOUT:g}s")
            time.sleep(0.05)
        return url

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            _kill_group(self.process)
            self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _answers(url: str, path: str | None, port: int) -> bool:
    if path is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(url + path, timeout=1) as response:
            return bool(200 <= response.status < 400)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kill_group(process: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
