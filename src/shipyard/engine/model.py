"""Values the engine reasons about: releases, desired services, instances and their states."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class State(str, Enum):
    """The life of an instance; `exited` and `failed` instances wait for their restart."""

    STARTING = "starting"
    READY = "ready"
    UNREADY = "unready"
    STOPPING = "stopping"
    EXITED = "exited"
    FAILED = "failed"


LIVE_STATES = (State.STARTING, State.READY, State.UNREADY)
DOWN_STATES = (State.EXITED, State.FAILED)


@dataclass(frozen=True)
class Probe:
    path: str
    interval: float
    timeout: float
    failure_threshold: int


@dataclass(frozen=True)
class Release:
    """What a set of instances runs. Any change to these fields makes a new release id."""

    id: str
    service: str
    version: str
    snapshot: str            # content hash of the artifact directory
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cpu: float
    memory: int
    readiness: Probe
    liveness: Probe
    startup_timeout: float
    digest: str = ""         # the artifact image's manifest digest ("" for a local `artifact.path` source)
    image: str = ""          # the artifact's name in the store
    rootfs: bool = False     # a full image: the snapshot is the instance's `/`
    workdir: str = ""        # a full image's working directory
    user: str = ""           # a full image's `uid:gid` from its config's User ("": root, as without one)

    # variable → key path in secrets/<env>.yaml, and a keyed hash of their values; never the values
    secrets: tuple[tuple[str, str], ...] = ()
    secrets_digest: str = ""
    # the release phase: run once before any instance of this release starts (empty: none)
    release_command: tuple[str, ...] = ()
    release_timeout: float = 0.0
    rerun_on_rollback: bool = False
    # variable → database the environment provides, and a digest of the credentials (never the password)
    databases: tuple[tuple[str, str], ...] = ()
    databases_digest: str = ""

    @property
    def source(self) -> str:
        """`image` for a built artifact, `local` for a snapshot of `artifact.path`."""
        return "image" if self.digest else "local"

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id, "service": self.service, "version": self.version, "snapshot": self.snapshot,
            "command": list(self.command), "env": dict(self.env), "cpu": self.cpu, "memory": self.memory,
            "readiness": vars(self.readiness), "liveness": vars(self.liveness), "startup_timeout": self.startup_timeout,
        }
        if self.digest:
            data.update(digest=self.digest, image=self.image, rootfs=self.rootfs, workdir=self.workdir)
            if self.user:
                data["user"] = self.user
        if self.secrets:
            data.update(secrets=dict(self.secrets), secrets_digest=self.secrets_digest)
        if self.release_command:
            data.update(release_command=list(self.release_command), release_timeout=self.release_timeout,
                        rerun_on_rollback=self.rerun_on_rollback)
        if self.databases:
            data.update(databases=[list(pair) for pair in self.databases], databases_digest=self.databases_digest)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Release":
        return cls(
            id=data["id"], service=data["service"], version=data["version"], snapshot=data["snapshot"],
            command=tuple(data["command"]), env=tuple(sorted(data["env"].items())), cpu=data["cpu"],
            memory=data["memory"], readiness=Probe(**data["readiness"]), liveness=Probe(**data["liveness"]),
            startup_timeout=data["startup_timeout"], digest=data.get("digest", ""), image=data.get("image", ""),
            rootfs=bool(data.get("rootfs", False)), workdir=data.get("workdir", ""), user=data.get("user", ""),
            secrets=tuple(sorted((data.get("secrets") or {}).items())), secrets_digest=data.get("secrets_digest", ""),
            release_command=tuple(data.get("release_command") or ()), release_timeout=data.get("release_timeout", 0.0),
            rerun_on_rollback=bool(data.get("rerun_on_rollback", False)),
            databases=tuple((str(v), str(d)) for v, d in data.get("databases") or ()),
            databases_digest=data.get("databases_digest", ""),
        )


@dataclass(frozen=True)
class Rolling:
    max_surge: int | str
    max_unavailable: int | str
    min_ready: float
    progress_deadline: float


@dataclass(frozen=True)
class Progressive:
    """What the pure plan needs of a canary or blue-green strategy (gates and analysis run elsewhere)."""

    steps: tuple[int, ...] = (100,)     # canary traffic weights in percent
    interval: float = 10.0              # seconds at each step before the analysis
    failure_threshold: int = 2
    mirror: float = 0.0                 # percent of primary traffic shadowed to the canary first
    parallel_run: float = 0.0           # percent of primary traffic copied to the comparator (parallel run)
    pre_rollout: bool = False           # gates to pass before any traffic
    pre_promotion: bool = False         # gates to pass before promotion / the switch
    auto_promote: bool = True           # blue-green: switch without `rollout promote`
    scale_down_delay: float = 30.0      # blue-green: how long blue outlives the switch
    # What the runner and the router need beyond the phases (entries of the spec, kept as values):
    matches: tuple[Any, ...] = ()       # canary: proxy route matches sent to the canary
    analysis: tuple[Any, ...] = ()      # canary: the analysis checks (spec.models.Analysis)
    min_requests: int = 0               # canary: fewer requests in a window and the analysis holds
    pre_rollout_gates: tuple[Any, ...] = ()     # spec.models.Gate entries
    pre_promotion_gates: tuple[Any, ...] = ()
    parallel_settings: Any = None        # canary: the spec's parallelRun entry (parallel/mirror.py reads it)


@dataclass(frozen=True)
class Routing:
    """How the service's stable endpoint treats requests (see proxy.model.Route)."""

    timeout: float = 0.0
    idle_timeout: float = 300.0
    retries: int = 2


@dataclass(frozen=True)
class Ingress:
    host: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class DesiredService:
    """One service as the environment should run it."""

    name: str
    release: Release
    replicas: int
    strategy: str            # rolling | recreate | blue-green | canary
    rolling: Rolling
    grace_period: float
    endpoint_port: int | None
    progressive: Progressive | None = None   # for canary and blue-green
    routing: Routing = Routing()
    ingress: Ingress | None = None
    artifact_path: str = ""                  # in the project, where the artifact's files are


@dataclass(frozen=True)
class Instance:
    """One running (or restarting) copy of a release, as the store records it."""

    id: str
    service: str
    release: str
    port: int
    state: State
    created_at: float
    pid: int | None = None
    handle: dict[str, Any] | None = None     # the runtime driver's handle, to re-adopt the process
    started_at: float | None = None           # when the current process was started
    ready_since: float | None = None
    restarts: int = 0
    crashes: int = 0                          # consecutive crashes, for back-off; reset after 10 min ready
    exit_code: int | None = None
    oom_killed: bool = False
    next_attempt_at: float | None = None      # when a down instance is restarted
    stopping_since: float | None = None
    message: str = ""

    def evolve(self, **changes: Any) -> "Instance":
        return replace(self, **changes)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    def available(self, now: float, min_ready: float) -> bool:
        """Ready for at least `min_ready` seconds: counts towards a rollout's availability."""
        if self.state is not State.READY or self.ready_since is None:
            return False
        # Ready "in the future" means the wall clock jumped back: it has been ready all along.
        return now - self.ready_since >= min_ready or self.ready_since > now


@dataclass(frozen=True)
class Rollout:
    """The move of one service from one release to another; all progress lives in the store."""

    service: str
    target: str                     # release id being rolled out
    started_at: float
    strategy: str
    status: str = "progressing"     # progressing | complete | failed | superseded
    reason: str = ""
    message: str = ""
    updated_at: float = 0.0
    previous: str | None = None     # release it replaces (None for the first deployment)
    revision: str | None = None     # the applied revision that asked for it
    # Canary and blue-green progress (see delivery/phases.py for the phases):
    phase: str = ""
    step: int = -1                  # index into the canary's steps; -1 before the first one
    weight: int = 0                 # percent of traffic routed to the new release now
    failures: int = 0               # failed analyses so far
    check_started_at: float | None = None   # start of the current analysis window
    next_check_at: float | None = None      # when the current step's analysis (or gate) is due
    switched_at: float | None = None        # blue-green: when all traffic moved to green
    approved: bool = False          # a manual gate was released by `rollout approve`
    decisions: tuple[dict[str, Any], ...] = ()   # every analysis and gate outcome, with its numbers
    waiting: str = ""               # why traffic cannot move on yet (instances not ready, or not fitting)
    waiting_since: float | None = None      # when that wait began (the progress deadline counts from it)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decisions", tuple(self.decisions))  # JSON gives a list back

    def evolve(self, **changes: Any) -> "Rollout":
        return replace(self, **changes)

    @property
    def progressive(self) -> bool:
        return self.phase != ""


@dataclass(frozen=True)
class Capacity:
    cpu: float       # cores
    memory: int      # bytes


@dataclass(frozen=True)
class Condition:
    type: str
    status: str              # "True" | "False"
    reason: str
    message: str
    object: str = ""         # the service it concerns, "" for the environment


@dataclass
class Plan:
    """What one reconcile pass decided; applying it is someone else's job."""

    start: list[tuple[str, str]] = field(default_factory=list)        # (service, release id) new instances
    restart: list[str] = field(default_factory=list)                  # down instances due for a new process
    stop: list[tuple[str, str]] = field(default_factory=list)         # (instance id, reason)
    forget: list[str] = field(default_factory=list)                   # stopped records to delete
    rollouts: list[Rollout] = field(default_factory=list)             # new or changed rollout records
    conditions: list[Condition] = field(default_factory=list)
    held: tuple[float, int] = (0.0, 0)                                # cpu, memory this environment holds after it

    @property
    def empty(self) -> bool:
        return not (self.start or self.restart or self.stop or self.forget or self.rollouts)
