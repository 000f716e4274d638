"""Following a branch: fetch on an interval, on a webhook or on `shipyard sync`; apply each new commit atomically.

Each new commit is exported to a clean snapshot, rendered and validated in full, and only then handed to
the engine; an invalid one changes nothing but a `Ready False ValidationFailed` condition and a history
entry. Between new commits, every scheduled fetch also puts back what was changed imperatively (`scale`,
edited snapshots) unless the environment is suspended. Fetches that fail back off (source/poll.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from shipyard.engine.desired import DesiredState
from shipyard.engine.model import Condition
from shipyard.engine.reconciler import Reconciler
from shipyard.engine.snapshot import tree_hash
from shipyard.errors import ShipyardError, SpecError
from shipyard.gitops.decide import (
    Action,
    commit_record,
    decide,
    rejection_condition,
    seconds_until,
    services_after,
)
from shipyard.gitops.settings import APPLIED_KEY, SourceSettings
from shipyard.gitops.snapshots import (
    changed_artifacts,
    export_revision,
    prune_revisions,
    remove_revision,
    restore_artifacts,
    revision_dir,
    verified_revision,
)
from shipyard.source.errors import SourceError
from shipyard.source.git import Commit, Mirror
from shipyard.source.poll import next_fetch_due, retry_delay
from shipyard.source.webhook import parse_push, verify_signature
from shipyard.state.store import Store

log = logging.getLogger("shipyard.gitops")
REJECTED_KEY = "source.rejected"  # {"commit": {...}, "errors": [...]} of the newest commit found invalid


class Environment(Protocol):
    """What the follower needs from the control plane it feeds."""

    store: Store
    reconciler: Reconciler
    state_dir: Path
    overrides: dict[str, int]
    base: DesiredState | None  # the desired state as the source says it, before `scale` overrides

    def build(self, directory: Path, revision: str) -> DesiredState:
        """Render and validate DIRECTORY into a desired state; SpecError when invalid. Safe in a thread."""

    def install(self, desired: DesiredState, origin: str, directory: Path | None = None) -> None:
        """Make DESIRED the environment's desired state. On the event loop."""


@dataclass(frozen=True)
class Outcome:
    """What one sync did. RESULT: applied, reapplied, unchanged, rejected, pending or failed."""

    result: str
    message: str
    commit: str | None = None
    errors: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "message": self.message, "commit": self.commit, "errors": list(self.errors)}


class Follower:
    """Keeps one environment at the head of one branch."""

    def __init__(self, environment: Environment, settings: SourceSettings, mirror: Mirror) -> None:
        self.env, self.settings, self.mirror = environment, settings, mirror
        self.secret = settings.read_secret()
        self.head: Commit | None = None
        self.fetched_at: float | None = None      # wall clock of the last successful fetch
        self.last_error: str | None = None
        self._last_fetch: float | None = None     # monotonic, of the last attempt
        self._failures = 0
        self._requested: str | None = None        # the trigger of a fetch asked for (webhook, resume)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pending_reported: str | None = None
        applied = environment.store.get(APPLIED_KEY)
        same_source = applied and (applied.get("url"), applied.get("path")) == (settings.url, settings.path)
        self.applied: dict[str, Any] | None = applied if same_source else None
        self.rejected: dict[str, Any] | None = environment.store.get(REJECTED_KEY) if self.applied else None

    # ---- entry points ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Run the last applied commit again from its snapshot (no network); else fetch and apply the head."""
        if self.applied is not None:
            try:
                await self._reapply([], quiet=True)
                if self.rejected:
                    self.env.reconciler.source_conditions = [self._rejection_condition()]
                return
            except (SourceError, SpecError) as exc:
                self._event("Warning", "source", "RestoreFailed",
                            f"cannot re-apply commit {self.applied['sha'][:12]}: {_one_line(exc)}; fetching instead")
        outcome = await self.sync("start")
        if outcome.result != "applied":
            detail = "; ".join(outcome.errors) or outcome.message
            raise ShipyardError(f"cannot follow {self.settings.label} ({self.settings.ref}): {detail}")

    async def run(self) -> None:
        """Fetch when due until cancelled: every interval (backing off after failures), or when asked."""
        while True:
            now = time.monotonic()
            if next_fetch_due(self._last_fetch, self.delay(), now, self._requested is not None):
                trigger, self._requested = self._requested or "interval", None
                try:
                    await self.sync(trigger)
                except Exception as exc:  # noqa: BLE001 - following must survive anything; reported as an event
                    log.exception("sync failed")
                    self._event("Warning", "source", "SyncFailed", _one_line(exc))
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, seconds_until(self._last_fetch,
                                                                                           self.delay(), now)))
            except TimeoutError:
                pass

    def request(self, trigger: str) -> None:
        """Fetch as soon as possible, without waiting for it (webhooks, resume)."""
        self._requested = trigger
        self._wake.set()

    async def sync(self, trigger: str) -> Outcome:
        """Fetch now and apply what is new (or put back what drifted); returns when done."""
        async with self._lock:
            return await self._sync(trigger)

    def handle_push(self, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        """A push webhook: (HTTP status, answer). Any correctly signed delivery fetches, unless it is shaped like a
        GitHub/Gitea/GitLab push of another ref or a deletion: Bitbucket, a CI job or a ping carry no ref we
        can read, and the fetch decides what is new."""
        if self.secret is None:
            return 403, {"error": "WebhookDisabled", "message": "no webhook secret is configured: restart with "
                         "`shipyard up --git … --webhook-secret-file FILE`"}
        if not verify_signature(self.secret, body, signature):
            return 401, {"error": "InvalidSignature",
                         "message": "missing or wrong X-Hub-Signature-256; nothing was fetched"}
        push = parse_push(body)
        if push is None:
            self.request("webhook")
            return 202, {"accepted": True, "message": f"not a GitHub/Gitea/GitLab push: fetching {self.settings.ref} "
                                                      "to see what is new"}
        if not push.matches(self.settings.ref):
            return 202, {"accepted": False, "message": f"push to {push.ref} ignored: following {self.settings.ref}"}
        if push.after is None:
            return 202, {"accepted": False, "message": f"{push.ref} was deleted: keeping the applied revision"}
        self.request("webhook")
        return 202, {"accepted": True, "message": f"fetching {self.settings.ref} ({push.after[:12]})"}

    # ---- status ------------------------------------------------------------------------------------
    def delay(self) -> float:
        interval = self.settings.interval
        return retry_delay(interval, self._failures) if self._failures else interval

    def next_sync_in(self) -> float:
        return seconds_until(self._last_fetch, self.delay(), time.monotonic())

    def status(self) -> dict[str, Any]:
        applied = self.applied["sha"] if self.applied else None
        suspended = self.env.reconciler.suspended
        pending = self.head.sha if self.head and suspended and self.head.sha != applied else None
        return {"url": self.settings.label, "ref": self.settings.ref, "path": self.settings.path,
                "interval": self.settings.interval, "fetched": self.fetched_at,
                "head": self.head.sha if self.head else None, "last_error": self.last_error,
                "pending": pending, "next_fetch_in": round(self.next_sync_in(), 1), "webhook": self.secret is not None}

    # ---- one sync ----------------------------------------------------------------------------------
    async def _sync(self, trigger: str) -> Outcome:
        head = await self._fetch(trigger)
        applied = self.applied["sha"] if self.applied else None
        rejected = self.rejected["commit"]["sha"] if self.rejected else None
        suspended = self.env.reconciler.suspended
        candidate = head.sha if head else None
        drift: list[str] = []
        if not suspended and self.applied and candidate in (None, applied, rejected):
            drift = await asyncio.to_thread(self._drift)
        action = decide(candidate, applied, rejected, suspended, bool(drift))
        if action is Action.APPLY:
            assert head is not None
            return await self._apply(head, trigger)
        if action is Action.REAPPLY:
            return await self._reapply(drift)
        if action is Action.HOLD:
            assert head is not None
            if self._pending_reported != head.sha:
                self._pending_reported = head.sha
                self._event("Normal", "source", "Pending", f"commit {head.short} ({head.message}) waits: the "
                            "environment is suspended; `shipyard resume` applies it")
            return Outcome("pending", f"commit {head.short} is not applied: the environment is suspended", head.sha)
        if head is None:
            return Outcome("failed", f"cannot fetch: {self.last_error}", applied)
        if self.rejected and head.sha == rejected:
            return Outcome("rejected", f"commit {head.short} is invalid; still running "
                           f"{(applied or '-')[:12]}", head.sha, tuple(self.rejected["errors"]))
        return Outcome("unchanged", f"commit {head.short} is applied", head.sha)

    async def _fetch(self, trigger: str) -> Commit | None:
        self._last_fetch = time.monotonic()
        try:
            commit = await asyncio.to_thread(self.mirror.fetch, self.settings.ref)
        except SourceError as exc:
            self._failures += 1
            self.last_error = str(exc)
            self._event("Warning", "source", "FetchFailed", f"{exc}; next attempt in {self.delay():g}s",
                        {"trigger": trigger})
            return None
        self.fetched_at, self._failures, self.last_error = time.time(), 0, None
        if self.head is None or self.head.sha != commit.sha:
            self._event("Normal", "source", "Fetched", f"{self.settings.ref} is at {commit.short} "
                        f"({commit.message}, {commit.author})", {"trigger": trigger, "commit": commit.sha})
        self.head = commit
        return commit

    async def _apply(self, commit: Commit, trigger: str) -> Outcome:
        try:
            root, content = await asyncio.to_thread(export_revision, self.mirror, commit.sha, self.settings.path,
                                                    self.env.state_dir)
            desired = await asyncio.to_thread(self.env.build, root, commit.sha)
        except SpecError as exc:
            return self._reject(commit, [" ".join(str(p).splitlines()) for p in exc.problems], trigger)
        except SourceError as exc:
            return self._reject(commit, [str(exc)], trigger)
        self.env.install(desired, f"commit {commit.short} of {self.settings.label}", root)
        self.applied = {"url": self.settings.url, "path": self.settings.path, "sha": commit.sha, "snapshot_hash": content,
                        "commit": commit_record(commit)}
        self.env.store.put(APPLIED_KEY, self.applied)
        self._clear_rejection()
        services = services_after(desired)
        self.env.store.add_history(commit.sha, "applied", {"commit": commit_record(commit), "trigger": trigger,
                                                           "errors": [], "services": services})
        summary = ", ".join(f"{name} {s['version']}×{s['replicas']}" for name, s in services.items())
        self._event("Normal", "environment", "Applied", f"commit {commit.short} ({commit.message}) by "
                    f"{commit.author}: {summary}", {"commit": commit.sha, "trigger": trigger})
        await asyncio.to_thread(prune_revisions, self.env.state_dir, {commit.sha})
        return Outcome("applied", f"applied commit {commit.short} ({commit.message})", commit.sha)

    def _reject(self, commit: Commit, errors: list[str], trigger: str) -> Outcome:
        self.rejected = {"commit": commit_record(commit), "errors": errors}
        self.env.store.put(REJECTED_KEY, self.rejected)
        self.env.reconciler.source_conditions = [rejection_condition(commit, errors)]
        self.env.store.add_history(commit.sha, "rejected", {
            "commit": commit_record(commit), "trigger": trigger, "errors": errors,
            "services": services_after(self.env.base)})
        count = len(errors)
        self._event("Warning", "environment", "Rejected", f"commit {commit.short} ({commit.message}) is invalid, "
                    f"{count} error{'s' if count != 1 else ''}: {errors[0]}", {"commit": commit.sha, "errors": errors})
        if commit.sha != (self.applied or {}).get("sha"):
            remove_revision(revision_dir(self.env.state_dir, commit.sha))
        applied = (self.applied or {}).get("sha", "-")[:12]
        return Outcome("rejected", f"commit {commit.short} is invalid; still running {applied}", commit.sha,
                       tuple(errors))

    async def _reapply(self, drift: list[str], quiet: bool = False) -> Outcome:
        """The applied commit again, from its verified snapshot: imperative changes are undone."""
        assert self.applied is not None
        sha = self.applied["sha"]
        root, content, restored = await asyncio.to_thread(
            verified_revision, self.mirror, sha, self.settings.path, self.env.state_dir,
            self.applied.get("snapshot_hash"))
        if self.env.base is not None:
            changed = await asyncio.to_thread(changed_artifacts, self.env.state_dir, self.env.base)
            await asyncio.to_thread(restore_artifacts, self.env.state_dir, self.env.base, root, changed)
        desired = await asyncio.to_thread(self.env.build, root, sha)
        self.env.install(desired, f"commit {sha[:12]} of {self.settings.label}", root)
        if content != self.applied.get("snapshot_hash"):
            self.applied = {**self.applied, "snapshot_hash": content}
            self.env.store.put(APPLIED_KEY, self.applied)
        if self.head is not None and self.head.sha == sha:
            self._clear_rejection()
        if restored:
            drift = [*drift, "the revision's snapshot"]
        if drift and not quiet:
            self._event("Normal", "environment", "DriftReverted", f"back to commit {sha[:12]} as git says: "
                        + ", ".join(drift), {"commit": sha})
        return Outcome("reapplied", f"commit {sha[:12]} re-applied: " + (", ".join(drift) or "nothing drifted"), sha)

    def _drift(self) -> list[str]:
        """What was changed imperatively since the applied commit: scale overrides, edited snapshots."""
        assert self.applied is not None
        drift = [f"{name} scaled to {count} (git says {self._replicas(name)})"
                 for name, count in sorted(self.env.overrides.items())]
        root = revision_dir(self.env.state_dir, self.applied["sha"])
        if not root.is_dir() or tree_hash(root) != self.applied.get("snapshot_hash"):
            drift.append("files in the revision's snapshot")
        if self.env.base is not None:
            drift += [f"files in {name}'s artifact snapshot"
                      for name in changed_artifacts(self.env.state_dir, self.env.base)]
        return drift

    def _replicas(self, service: str) -> Any:
        base = self.env.base.services.get(service) if self.env.base else None
        return base.replicas if base else "-"

    def _clear_rejection(self) -> None:
        if self.rejected is not None:
            self.rejected = None
            self.env.store.put(REJECTED_KEY, None)
        self.env.reconciler.source_conditions = []

    def _rejection_condition(self) -> Condition:
        assert self.rejected is not None
        record = self.rejected["commit"]
        commit = Commit(record["sha"], record["author"], record["email"], datetime.fromisoformat(record["date"]),
                        record["message"], "")
        return rejection_condition(commit, self.rejected["errors"])

    def _event(self, kind: str, obj: str, reason: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.env.reconciler.event(kind, obj, reason, message, data)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n"))
