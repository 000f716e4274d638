"""Artifacts: build time and size, determinism, warm vs cold pull on a release change, start latency by kind.

Run: .venv/bin/python bench/artifacts.py [--runs 5] [--payload-mb 20]

1. Build: each example shop service (examples/shop/apps/*, with its artifact.yaml) built 3 times in
   process (`build_image`); median time, compressed size, and whether every build gave the same digest.
2. Release change → first instance ready: a real registry (Debian's docker-registry, free port) holds
   the probe app as 1.0.0 and 2.0.0, each with PAYLOAD_MB of random bytes so a pull has something to move.
   A control plane (`up --detach`, store = the registry) runs 1.0.0; `apply` of 2.0.0 pulls its blobs
   for the first time (cold), `apply` of 1.0.0 again finds them cached and unpacked (warm). Time from the
   start of `shipyard apply` to the first instance of the new version `ready` in `status`.
3. Start latency by kind: the same program (busybox-static `httpd`, so the runtime is what differs)
   started by the ProcessDriver in bubblewrap as a full image (its own root), an app image (its files on
   the host's read-only root) and a path snapshot; spawn → first 200 on /healthz, median of RUNS.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shipyard.artifacts.build import build_image  # noqa: E402
from shipyard.artifacts.layout import LayoutStore  # noqa: E402
from shipyard.artifacts.pull import BlobCache, pull, unpack  # noqa: E402
from shipyard.artifacts.registry import RegistryStore  # noqa: E402
from shipyard.engine.snapshot import ensure_snapshot, tree_hash  # noqa: E402
from shipyard.runtime.base import InstanceSpec, Limits  # noqa: E402
from shipyard.runtime.process import ProcessDriver  # noqa: E402
from tests.artifacts.registry import running_registry  # noqa: E402
from tests.controlplane import ControlPlane, free_port, run_cli, wait_for  # noqa: E402
from tests.engine.test_images import _busybox_image, _project  # noqa: E402
from tests.projects import PROBE_APP, probe_service  # noqa: E402


def builds() -> None:
    print("build (3 builds each, in process):")
    for app in sorted((ROOT / "examples" / "shop" / "apps").iterdir()):
        if not (app / "artifact.yaml").is_file():
            continue
        times, digests, size = [], set(), 0
        for _ in range(3):
            started = time.perf_counter()
            _, image = build_image(app, "1.0.0")
            times.append(time.perf_counter() - started)
            digests.add(image.digest)
            size = sum(len(b) for b in image.blobs.values()) + len(image.manifest)
        print(f"  {app.name:9s} median {statistics.median(times) * 1000:6.1f} ms   {size / 1024:6.1f} KiB   "
              f"same digest every time: {len(digests) == 1}")


def _source(tmp: Path, version: str, payload_mb: int) -> Path:
    source = tmp / f"probe-{version}"
    shutil.copytree(PROBE_APP, source)
    (source / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: probe\n"
                                          "command: [python3, app.py]\n")
    (source / "payload.bin").write_bytes(os.urandom(payload_mb * 1024 * 1024))
    (source / "version.txt").write_text(version)
    return source


def _first_ready(plane: ControlPlane, version: str) -> float:
    started = time.perf_counter()
    plane.cli("apply")
    wait_for(lambda: any(i["version"] == version for i in plane.instances("probe", "ready")), timeout=120,
             interval=0.02, what=f"an instance of {version}")
    return time.perf_counter() - started


def release_change(tmp: Path, payload_mb: int) -> None:
    with running_registry(tmp / "registry") as registry:
        location = f"{registry.host}/bench"
        for version in ("1.0.0", "2.0.0"):
            run_cli("build", str(_source(tmp, version, payload_mb)), "--version", version, "--store", location)
        service = probe_service("probe", artifact={"image": "probe"})
        project = _project(tmp / "project", Path(location), service, {"dev": "1.0.0"})
        plane = ControlPlane(project, tmp / "state", "dev")
        try:
            plane.up()
            plane.wait_ready("probe", 1)
            _project(project, Path(location), service, {"dev": "2.0.0"})
            cold = _first_ready(plane, "2.0.0")
            _project(project, Path(location), service, {"dev": "1.0.0"})
            warm = _first_ready(plane, "1.0.0")
        finally:
            plane.teardown()
        store = RegistryStore(location)
        digest = store.resolve("probe", "2.0.0")
        pulls = {}
        for kind in ("cold", "warm"):
            started = time.perf_counter()
            unpack(pull(store, "probe", digest, BlobCache(tmp / "bench-cache")), tmp / "bench-roots")
            pulls[kind] = time.perf_counter() - started
    print(f"release change -> first instance ready ({payload_mb} MiB payload, registry on loopback):")
    print(f"  cold pull {cold:.2f} s   warm cache {warm:.2f} s   "
          f"(of which pull + verify + unpack: cold {pulls['cold'] * 1000:.0f} ms, warm {pulls['warm'] * 1000:.1f} ms)")


def _healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def start_latency(tmp: Path, runs: int) -> None:
    driver = ProcessDriver(use_cgroups=False)
    layout = tmp / "busybox"
    _busybox_image(layout, "1.0.0", "hi")
    store = LayoutStore(tmp)
    digest = store.resolve("busybox", "1.0.0")
    full_root = unpack(pull(store, "busybox", digest, BlobCache(tmp / "cache")), tmp / "roots")
    app_dir = tmp / "app"
    shutil.copytree(full_root, app_dir, symlinks=True)
    kinds = {
        "full image": dict(snapshot_dir=full_root, rootfs=True, workdir="/www",
                           argv=("/bin/httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "/www")),
        "app image": dict(snapshot_dir=app_dir, argv=("./bin/httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "www")),
        "path snapshot": dict(snapshot_dir=None, argv=("./bin/httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "www")),
    }
    print(f"instance start -> first 200 on /healthz (busybox httpd under bubblewrap, median of {runs}):")
    for kind, spec in kinds.items():
        times = []
        for n in range(runs):
            port = free_port()
            argv = tuple(a.replace("{port}", str(port)) for a in spec["argv"])  # type: ignore[union-attr]
            instance = InstanceSpec(
                instance_id=f"bench-{kind.replace(' ', '-')}-{n}", service="bench", argv=argv,
                snapshot_dir=spec["snapshot_dir"] or app_dir, data_dir=tmp / "data", run_dir=tmp / "run" / f"{kind}-{n}",
                env={"PATH": "/bin"}, limits=Limits(None, None), rootfs=bool(spec.get("rootfs", False)),
                workdir=str(spec.get("workdir", "/")))
            started = time.perf_counter()
            if spec["snapshot_dir"] is None:   # what the engine does for artifact.path: hash, copy once, run
                content = tree_hash(app_dir)
                snapshot = ensure_snapshot(app_dir, tmp / f"snapshots-{n}", content)
                instance = dataclasses.replace(instance, snapshot_dir=snapshot)
            handle = driver.start(instance)
            try:
                while not _healthz(port):
                    time.sleep(0.002)
                times.append(time.perf_counter() - started)
            finally:
                driver.kill_all(handle)
        print(f"  {kind:14s} {statistics.median(times) * 1000:6.1f} ms")
    print("  (full and app images: already pulled and unpacked, as after the first release of a version; "
          "path snapshot: hashed and copied first, as the engine does for `artifact.path`)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--payload-mb", type=int, default=20)
    args = parser.parse_args()
    builds()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        release_change(Path(tmp) / "release", args.payload_mb)
        start_latency(Path(tmp) / "start", args.runs)


if __name__ == "__main__":
    main()
