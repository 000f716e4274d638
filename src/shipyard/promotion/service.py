"""Promotion beside the reconcile loop: verify what runs here, take new versions into this environment
(automation commits), and move verified versions on to the next environment (promotion commits).

Decisions are pure (`verification.assess`, `policy.newest`, `commits.*`); this module only gathers the
facts each second, runs the verify checks, records verdicts (store key `verification/<service>`) and
events, and makes the commits through `source.git.WorkClone` when the environment follows git. Every
commit is what deploys: git stays the only way to change desired state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from shipyard.delivery.evaluate import PROMETHEUS_URL_ENV, evaluate
from shipyard.delivery.gates import run_gates
from shipyard.errors import ShipyardError
from shipyard.promotion.commits import Move, automation_message, promotion_message
from shipyard.promotion.overlay import declared_version, set_version
from shipyard.promotion.policy import newest
from shipyard.promotion.verification import REJECTED, VERIFIED, VERIFYING, Checks, assess
from shipyard.proxy.model import cluster_name
from shipyard.spec.load import load_project
from shipyard.spec.models import CommandGate, Project, UrlGate

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane

log = logging.getLogger("shipyard.promotion")
TICK_S = 1.0
AUTOMATION_BY = "shipyard automation"


class PromotionService:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self.project: Optional[Project] = None
        self.directory: Optional[Path] = None
        self._checks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._checked: dict[tuple[str, str], Checks] = {}
        self._next_look: dict[str, float] = {}
        self._warned: set[str] = set()

    # ---- configuration ----------------------------------------------------------------------------
    def configure(self, directory: Path) -> None:
        """The applied revision's promotion path and automation rules (shipyard.yaml)."""
        source = load_project(directory)
        self.project, self.directory = source.project, directory

    # ---- the loop ---------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                await self.tick(time.time())
            except ShipyardError as exc:
                self._warn("PromotionFailed", "environment", str(exc))
            await asyncio.sleep(TICK_S)

    async def tick(self, now: float) -> None:
        reconciler = self.plane.reconciler
        desired = reconciler.desired
        if desired is None or self.project is None:
            return
        stage = self.project.next_stage(self.plane.environment)
        for name, service in sorted(desired.services.items()):
            release = service.release
            verdict = self._assess(name, release.id, release.version, stage, now)
            record = {**verdict.to_dict(), "digest": release.digest or None, "to": stage.name if stage else None}
            key = f"verification/{name}"
            previous = self.plane.store.get(key) or {}
            if (previous.get("release"), previous.get("state"), previous.get("reason")) != \
                    (record["release"], record["state"], record["reason"]):
                self.plane.store.put(key, record)
                self._transition(name, previous, record)
            if verdict.state == VERIFYING and (name, release.id) not in self._checks:
                self._checks[(name, release.id)] = asyncio.create_task(self._run_checks(name, release.id, stage, now))
            if verdict.state == VERIFIED and stage is not None and stage.auto and not stage.approval:
                await self._promote(name, record, stage.name)
        await self._automate(now)

    def _assess(self, name: str, release_id: str, version: str, stage: Any, now: float) -> Any:
        reconciler = self.plane.reconciler
        rollout = reconciler.rollouts.get(name)
        if rollout is None or rollout.target != release_id:
            rollout = next((r for r in reversed(self.plane.store.rollout_history(name)) if r.target == release_id),
                           None)
        pin = reconciler.pins.get(name)
        undone = pin is not None and pin.declared == release_id
        restarts = sum(i.restarts for i in reconciler.instances.values() if i.release == release_id)
        soak = stage.soak if stage is not None else 0.0
        has_checks = bool(stage is not None and stage.verify)
        return assess(name, release_id, version, rollout, undone, restarts, soak, has_checks,
                      self._checked.get((name, release_id)), now)

    def _transition(self, name: str, previous: dict[str, Any], record: dict[str, Any]) -> None:
        state, version = record["state"], record["version"]
        if state == VERIFIED:
            target = f"; may move on to {record['to']}" if record.get("to") else ""
            self.plane.reconciler.event("Normal", name, "Verified", f"{version} verified in "
                                        f"{self.plane.environment}{target}", record.get("evidence"))
        elif state == REJECTED and previous.get("state") != REJECTED:
            self.plane.reconciler.event("Warning", name, "Rejected", f"{version} rejected in "
                                        f"{self.plane.environment}: {record['reason']}")
            rejected = self.plane.store.get("rejected") or []
            entry = {"service": name, "version": version, "digest": record.get("digest"), "at": time.time(),
                     "reason": record["reason"]}
            self.plane.store.put("rejected", [*rejected, entry][-500:])

    async def _run_checks(self, name: str, release_id: str, stage: Any, soaked_at: float) -> None:
        """The edge's verify checks: commands and URLs against the service's endpoint, thresholds over the soak."""
        try:
            details: list[dict[str, Any]] = []
            gates = [c for c in stage.verify if isinstance(c, (CommandGate, UrlGate))]
            metrics = [c for c in stage.verify if not isinstance(c, (CommandGate, UrlGate))]
            endpoint = self.plane.reconciler.router.endpoint(name) or ""
            if gates:
                sandbox = await asyncio.to_thread(self.plane.reconciler.runner.sandbox)
                results = await run_gates(gates, endpoint, service=name, release=release_id, cwd=self.directory,
                                          sandbox=sandbox)
                details += [{"check": r.kind, "passed": r.passed, "reason": r.detail} for r in results]
                if len(results) < len(gates):
                    details.append({"check": "verify", "passed": False, "reason": "a check did not run"})
            if metrics:
                history = self.plane.reconciler.router.traffic
                window = history.window(cluster_name(release_id), soaked_at - max(stage.soak, 1.0)) \
                    if history is not None else None
                if window is None:
                    raise ShipyardError("no traffic figures for the soak window (no data plane)")
                evaluation = await evaluate(metrics, window, None, min_requests=0, service=name, release=release_id,
                                            prometheus_url=os.environ.get(PROMETHEUS_URL_ENV))
                details += [{"check": d["check"], "passed": d["verdict"] == "pass", "reason": d.get("reason", ""),
                             "value": d.get("value")} for d in evaluation.to_dict()["decisions"]]
            passed = all(d["passed"] for d in details)
            self._checked[(name, release_id)] = Checks(passed, time.time(), tuple(details))
        except ShipyardError as exc:
            self._checked[(name, release_id)] = Checks(False, time.time(), ({"check": "verify", "passed": False,
                                                                           "reason": str(exc)},))

    # ---- commits ----------------------------------------------------------------------------------
    async def _promote(self, name: str, record: dict[str, Any], target: str) -> None:
        """An auto edge: commit the verified version into the next environment's overlay, once."""
        version = record["version"]
        done = self.plane.store.get(f"promoted/{name}/{target}")
        if done == version:
            return
        if self._rejected_version(name, version):
            return
        def message(old: str) -> str:
            move = Move(name, version, record.get("digest"), declared_version(old, name), verification=record)
            return promotion_message([move], self.plane.environment, target,
                                     f"{AUTOMATION_BY} ({self.plane.environment})")

        if await self._commit(target, name, version, message):
            self.plane.store.put(f"promoted/{name}/{target}", version)
            self.plane.reconciler.event("Normal", name, "Promoted", f"{version} committed into {target}'s overlay")

    async def _automate(self, now: float) -> None:
        """Automation rules for this environment: the newest matching version in the store, committed here."""
        assert self.project is not None
        desired = self.plane.reconciler.desired
        for rule in self.project.automation:
            if rule.environment != self.plane.environment or desired is None or rule.service not in desired.services:
                continue
            if now < self._next_look.get(rule.service, 0.0):
                continue
            self._next_look[rule.service] = now + rule.interval
            image = self._image(rule.service)
            if image is None:
                self._warn("AutomationNeedsImage", rule.service, "automation needs `artifact: {image: …}`")
                continue
            store = await asyncio.to_thread(self._store)
            versions = await asyncio.to_thread(store.versions, image)
            candidates = [v for v in versions if not self._rejected_version(rule.service, v)]
            found = newest(candidates, rule.policy, rule.filter_tags)
            current = desired.services[rule.service].release.version
            if found is None or found == current:
                continue
            digest = await asyncio.to_thread(store.resolve, image, found)
            move = Move(rule.service, found, digest, current)
            message = automation_message(move, self.plane.environment, AUTOMATION_BY)
            if await self._commit(self.plane.environment, rule.service, found, message):
                self.plane.reconciler.event("Normal", rule.service, "AutomationCommitted",
                                            f"{current} → {found} ({digest}) committed into {self.plane.environment}")

    async def _commit(self, environment: str, service: str, version: str, message: str | Callable[[str], str]) -> bool:
        follower = self.plane.follower
        if follower is None:
            self._warn("PromotionNeedsGit", service, f"cannot commit {service} {version} into {environment}: this "
                       "environment does not follow a git repository; use `shipyard promote` in a clone")
            return False
        from shipyard.source.git import WorkClone

        settings = follower.settings
        relative = "/".join(p for p in (settings.path.strip("/"), f"environments/{environment}.yaml") if p)
        identity = (f"Shipyard ({self.plane.environment})", f"shipyard+{self.plane.environment}@localhost")
        clone = WorkClone(self.plane.state_dir / "git", settings.url, settings.ref, identity)
        commit = await asyncio.to_thread(clone.change, relative, lambda text: set_version(text, service, version),
                                         message)
        if commit is not None:
            follower.request("promotion")
        return True

    # ---- helpers ----------------------------------------------------------------------------------
    def _image(self, service: str) -> Optional[str]:
        desired = self.plane.reconciler.desired
        release = desired.services[service].release if desired and service in desired.services else None
        return release.image or None if release is not None else None

    def _store(self) -> Any:
        from shipyard.artifacts.stores import open_store, store_location

        assert self.project is not None
        return open_store(store_location(None, self.project.store, self.directory))

    def _rejected_version(self, service: str, version: str) -> bool:
        return any(r["service"] == service and r["version"] == version for r in self.plane.store.get("rejected") or [])

    def _warn(self, reason: str, obj: str, message: str) -> None:
        if (reason, obj, message) in self._warned:
            return
        self._warned.add((reason, obj, message))  # type: ignore[arg-type]
        self.plane.reconciler.event("Warning", obj, reason, message)
        log.warning("%s %s: %s", obj, reason, message)
