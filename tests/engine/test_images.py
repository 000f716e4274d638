"""Artifact images end to end: environments run built versions by digest; a full OCI image made by other
tools (busybox-static + a shell-script server, copied in with skopeo) runs under bubblewrap with its own root."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.artifacts.registry import need
from tests.artifacts.sources import source  # noqa: F401 - the fixture
from tests.controlplane import ControlPlane, http_get, run_cli, wait_for
from tests.projects import PROBE_APP, probe_service, write_yaml


def _project(root: Path, store: Path, service: dict[str, Any], versions: dict[str, str]) -> Path:
    write_yaml(root / "shipyard.yaml", {"apiVersion": "shipyard/v1", "kind": "Project", "name": "test",
                                        "environments": list(versions), "store": str(store)})
    write_yaml(root / "services" / f"{service['name']}.yaml", service)
    for environment, version in versions.items():
        write_yaml(root / "environments" / f"{environment}.yaml", {
            "apiVersion": "shipyard/v1", "kind": "Environment", "name": environment,
            "services": {service["name"]: {"version": version}}})
    return root


@pytest.fixture
def planes():
    made: list[ControlPlane] = []
    yield made
    for plane in made:
        plane.teardown()


def _read(plane: ControlPlane, name: str, path: str) -> str:
    status, _, body = http_get(f"{plane.service(name)['endpoint']}/read?path={path}")
    assert status == 200, body
    return str(json.loads(body)["content"])


def test_two_environments_run_two_versions_and_editing_the_source_changes_nothing(tmp_path: Path, planes) -> None:
    source, store = tmp_path / "catalog", tmp_path / "store"
    shutil.copytree(PROBE_APP, source)
    (source / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: catalog\n"
                                          "command: [python3, app.py]\n")
    (source / "message.txt").write_text("one")
    env = {"SHIPYARD_STORE": str(store)}
    one = run_cli("build", str(source), "--version", "1.0.0", env=env).stdout.strip().split("@")[1]
    (source / "message.txt").write_text("two")
    two = run_cli("build", str(source), "--version", "2.0.0", env=env).stdout.strip().split("@")[1]
    service = probe_service("catalog", artifact={"image": "catalog"})
    project = _project(tmp_path / "project", store, service, {"dev": "2.0.0", "prod": "1.0.0"})
    dev = ControlPlane(project, tmp_path / "dev", "dev")
    prod = ControlPlane(project, tmp_path / "prod", "prod")
    planes += [dev, prod]
    dev.up()
    prod.up()
    dev.wait_ready("catalog", 1)
    prod.wait_ready("catalog", 1)
    assert (_read(dev, "catalog", "message.txt"), _read(prod, "catalog", "message.txt")) == ("two", "one")
    assert dev.service("catalog")["artifact"] == {"source": "image", "image": "catalog", "digest": two, "kind": "app"}
    assert prod.service("catalog")["digest"] == one
    assert f"catalog@{one[:19]}" in prod.cli("status").stdout
    applied = json.loads(prod.cli("history", "-o", "json").stdout)[0]["services"]["catalog"]
    assert (applied["version"], applied["digest"]) == ("1.0.0", one)
    assert f"catalog 1.0.0@{one[:19]}×1" in prod.cli("history").stdout
    # the source moves on, and 2.0.0 is even re-tagged to new code: what runs stays as it was
    (source / "message.txt").write_text("three")
    run_cli("build", str(source), "--version", "2.0.0", env=env)
    before = [i["pid"] for i in dev.instances("catalog")]
    dev.cli("apply")
    prod.cli("apply")
    assert (_read(dev, "catalog", "message.txt"), _read(prod, "catalog", "message.txt")) == ("two", "one")
    assert [i["pid"] for i in dev.instances("catalog")] == before
    assert dev.service("catalog")["digest"] == two


def test_a_version_not_in_the_store_is_a_validation_error_naming_the_versions(tmp_path: Path, source: Path) -> None:
    store = tmp_path / "store"
    run_cli("build", str(source), "--version", "1.0.0", env={"SHIPYARD_STORE": str(store)})
    service = probe_service("hello", artifact={"image": "hello"})
    project = _project(tmp_path / "project", store, service, {"dev": "1.0.0", "prod": "9.9.9"})
    run_cli("validate", str(project), "--env", "dev")
    result = run_cli("validate", str(project), "--env", "prod", check=False)
    assert result.returncode == 1
    assert (f"environments/prod.yaml:6:5: error: services.hello.version: service `hello`: version `9.9.9` of "
            f"artifact `hello` is not in the store {store} (versions: 1.0.0)") in result.stderr
    rendered = json.loads(run_cli("render", str(project), "--env", "dev", "-o", "json").stdout)
    assert rendered["services"]["hello"]["artifact"]["digest"].startswith("sha256:")


# ---- a full image Shipyard did not build -------------------------------------------------------------
SERVER = """#!/bin/sh
ls / > /data/root-listing.txt
echo "$(id -u):$(id -g)" > /data/user.txt
exec httpd -f -p 127.0.0.1:$PORT -h /www
"""


def _busybox_image(layout: Path, version: str, message: str) -> None:
    """An OCI image layout written with the standard library, from Debian's static busybox."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        def add(name: str, data: bytes | None = None, mode: int = 0o644, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
        add("bin")
        add("bin/busybox", Path("/bin/busybox").read_bytes(), 0o755)
        for applet in ("sh", "ls", "httpd", "id"):
            add(f"bin/{applet}", link="busybox")
        add("etc")
        add("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nwww:x:101:102::/www:/bin/sh\n")
        add("etc/group", b"root:x:0:\nweb:x:102:\n")
        add("serve.sh", SERVER.encode(), 0o755)
        add("www")
        add("www/healthz", b"ok\n")
        add("www/index.html", message.encode())
    layer = raw.getvalue()
    import hashlib
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]},
                         "config": {"Entrypoint": ["/serve.sh"], "Env": ["PATH=/bin"], "WorkingDir": "/www",
                                                    "User": "www"}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest,
                                       "size": len(layer)}]}).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data, name in ((layer, digest), (config, config_digest), (manifest, manifest_digest)):
        (blobs / name.split(":")[1]).write_bytes(data)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": version}}]}))


def test_a_busybox_image_runs_isolated_with_health_checks_and_rolls_without_downtime(tmp_path: Path, planes) -> None:
    need("skopeo", "bwrap")
    if not Path("/bin/busybox").is_file():
        pytest.skip("busybox-static is not installed")
    store = tmp_path / "store"
    (store / "web").mkdir(parents=True)
    for version, message in (("1.0.0", "one"), ("2.0.0", "two")):
        _busybox_image(tmp_path / f"made-{version}", version, message)
        subprocess.run(["skopeo", "copy", f"oci:{tmp_path / f'made-{version}'}:{version}",
                        f"oci:{store / 'web'}:{version}"], check=True, capture_output=True)
    service = probe_service("web", artifact={"image": "web"}, replicas=2)
    project = _project(tmp_path / "project", store, service, {"dev": "1.0.0"})
    plane = ControlPlane(project, tmp_path / "state", "dev")
    planes.append(plane)
    plane.up()
    ready = plane.wait_ready("web", 2)
    endpoint = plane.service("web")["endpoint"]
    assert http_get(endpoint + "/")[2] == b"one"
    instance = ready[0]
    assert instance["isolation"]["sandbox"] == "bubblewrap"
    assert instance["limits"]["memory_bytes"] == 64 * 2**20
    listing = (tmp_path / "state" / "data" / "web" / "root-listing.txt").read_text().split()
    assert sorted(listing) == ["bin", "data", "dev", "etc", "proc", "serve.sh", "tmp", "www"]  # not the host's root
    assert (tmp_path / "state" / "data" / "web" / "user.txt").read_text().strip() == "101:102"  # the image's User
    assert plane.service("web")["artifact"]["kind"] == "full"

    failures: list[str] = []
    answers: set[bytes] = set()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, _, body = http_get(endpoint + "/", timeout=5)
                answers.add(body)
                if status != 200:
                    failures.append(str(status))
            except OSError as exc:
                failures.append(repr(exc))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        _project(project, store, service, {"dev": "2.0.0"})
        plane.cli("apply")
        wait_for(lambda: [i["version"] for i in plane.instances("web", "ready")] == ["2.0.0"] * 2
                 and len(plane.instances("web")) == 2, timeout=40, what="both instances on 2.0.0")
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert answers == {b"one", b"two"}
    latest = json.loads(plane.cli("rollout", "history", "web", "-o", "json").stdout)[0]
    assert (latest["version"], latest["digest"]) == ("2.0.0", plane.service("web")["digest"])
    assert latest["digest"][:19] in plane.cli("rollout", "history", "web").stdout


def test_an_environment_pulls_its_version_from_a_registry_with_basic_auth(tmp_path: Path, planes, source: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.artifacts.registry import running_registry
    shutil.copy(PROBE_APP / "app.py", source / "app.py")
    monkeypatch.setenv("SHIPYARD_REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("SHIPYARD_REGISTRY_PASSWORD", "pa55")
    with running_registry(tmp_path / "registry", "ci", "pa55") as registry:
        location = f"{registry.host}/shop"
        digest = run_cli("build", str(source), "--version", "1.0.0", "--store", location).stdout.strip().split("@")[1]
        service = probe_service("hello", artifact={"image": "hello"})
        project = _project(tmp_path / "project", Path(location), service, {"dev": "1.0.0"})
        plane = ControlPlane(project, tmp_path / "state", "dev")
        planes.append(plane)
        plane.up()
        plane.wait_ready("hello", 1)
        assert plane.service("hello")["digest"] == digest
        blobs = tmp_path / "state" / "artifacts" / "blobs" / "sha256"
        assert (blobs / digest.split(":")[1]).is_file()   # pulled into the environment's verified cache
