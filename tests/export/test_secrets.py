"""Secrets exported as a SOPS-encrypted Secret for the cluster's key, checked with the real `sops` as the oracle."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from shipyard.export.images import ExportError
from shipyard.export.repository import Settings, export_project
from shipyard.export.secrets import FINGERPRINT_ANNOTATION, ClusterKeys
from shipyard.export.validate import validate_objects
from shipyard.export.write import previous_file, write_export
from shipyard.export.yamltext import dump_documents, load_documents
from shipyard.secrets.files import write_secrets
from tests.projects import probe_service, write_project
from tests.secrets.conftest import NOW, Keyring, make_keyring

from .conftest import fixed_images, kustomize

VALUES = {"payments": {"api_key": "sk_live_51Hx-export-secret"}, "db": {"password": "pw-Zq9!export"},
          "unused": "never-exported-value"}
CLEAR = ("sk_live_51Hx-export-secret", "pw-Zq9!export", "never-exported-value")


def secret_project(root: Path, keyring: Keyring) -> Path:
    env = {"MODE": "live", "API_KEY": {"secret": "payments.api_key"}, "DB_PASSWORD": {"secret": "db.password"}}
    write_project(root, [probe_service("api", env=env), probe_service("web")])
    write_secrets(root, "dev", VALUES, keyring.identities, NOW, recipients=[keyring.public])
    return root


def keys_for(cluster: Keyring, environment: Keyring, out: Path, now: datetime.datetime = NOW,
             recipients: tuple[str, ...] | None = None) -> Settings:
    return Settings(secrets=ClusterKeys({"dev": recipients or (cluster.public,)}, lambda env: environment.identities,
                                        lambda relative: previous_file(out, relative), now))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Keyring, Keyring]:
    return make_keyring(tmp_path / "env-key"), make_keyring(tmp_path / "cluster-key")


def yaml_load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def test_the_secret_decrypts_with_the_clusters_key_to_the_values_and_validates(tmp_path, keys, kubectl):
    env_key, cluster = keys
    root, out = secret_project(tmp_path / "p", env_key), tmp_path / "out"
    write_export(out, export_project(root, None, fixed_images, keys_for(cluster, env_key, out)).files)

    encrypted = yaml_load((out / "apps/dev/secrets.yaml").read_text())
    assert [e["recipient"] for e in encrypted["sops"]["age"]] == [cluster.public]
    assert encrypted["sops"]["encrypted_regex"] == "^(data|stringData)$"
    assert all(v.startswith("ENC[AES256_GCM,") for v in encrypted["stringData"].values())
    decrypted = yaml_load(cluster.sops("decrypt", "apps/dev/secrets.yaml", cwd=out).stdout)
    assert decrypted["stringData"] == {"db.password": "pw-Zq9!export", "payments.api_key": "sk_live_51Hx-export-secret"}
    assert validate_objects([decrypted], None) == []   # the Secret the cluster gets: kubernetes-validate, strict
    # only the cluster can decrypt it: not the environment's own key
    assert env_key.sops("decrypt", "apps/dev/secrets.yaml", cwd=out, check=False).returncode != 0

    built = kustomize(kubectl, out / "apps" / "dev")
    container = next(o for o in built if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")[
        "spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {"API_KEY": {"name": "test-secrets", "key": "payments.api_key"},
                    "DB_PASSWORD": {"name": "test-secrets", "key": "db.password"}}
    config = next(o for o in built if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "api-config")
    assert config["data"]["MODE"] == "live" and "API_KEY" not in config["data"]
    # What Flux applies: the Secret as Kustomize built it (namespace, labels added), decrypted like Flux does
    # (kustomize-controller skips the MAC check, since Kustomize changes the metadata).
    secret = next(o for o in built if o["kind"] == "Secret")
    (tmp_path / "built.yaml").write_text(dump_documents([secret]))
    applied = yaml_load(cluster.sops("decrypt", "--ignore-mac", "built.yaml", cwd=tmp_path).stdout)
    assert applied["metadata"]["namespace"] == "test" and applied["stringData"]["db.password"] == "pw-Zq9!export"
    assert validate_objects([applied], None) == []

    assert "**secret values at rest (encrypted in Shipyard's state dir)** (dev)" in (out / "GAPS.md").read_text()
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not any(value in text for value in CLEAR), path


def test_the_overlay_and_flux_decryption_validate_against_the_crds(tmp_path, keys, crds, kubectl):
    env_key, cluster = keys
    root, out = secret_project(tmp_path / "p", env_key), tmp_path / "out"
    write_export(out, export_project(root, None, fixed_images, keys_for(cluster, env_key, out)).files)
    built = kustomize(kubectl, out / "apps" / "dev")
    assert validate_objects([o for o in built if o["kind"] != "Secret"], crds) == []
    flux = next(o for o in load_documents((out / "clusters/dev/flux.yaml").read_text()) if o["kind"] == "Kustomization")
    assert flux["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
    assert validate_objects([flux], crds) == []
    broken = {**flux, "spec": {**flux["spec"], "decryption": {"provider": "sops", "secretRef": "sops-age"}}}
    assert validate_objects([broken], crds)   # the CRD does catch a malformed stanza


def pod_fingerprint(kubectl: str, out: Path, service: str) -> str | None:
    built = kustomize(kubectl, out / "apps" / "dev")
    deployment = next(o for o in built if o["kind"] == "Deployment" and o["metadata"]["name"] == service)
    return (deployment["spec"]["template"]["metadata"].get("annotations") or {}).get(FINGERPRINT_ANNOTATION)


def test_an_unchanged_secret_keeps_its_ciphertext_and_a_changed_one_is_encrypted_anew(tmp_path, keys, kubectl):
    env_key, cluster = keys
    root, out, other = secret_project(tmp_path / "p", env_key), tmp_path / "out", tmp_path / "other"
    write_export(out, export_project(root, None, fixed_images, keys_for(cluster, env_key, out)).files)
    first = (out / "apps/dev/secrets.yaml").read_bytes()
    pods = pod_fingerprint(kubectl, out, "api")
    assert pods and pod_fingerprint(kubectl, out, "web") is None   # web reads no secret
    later = NOW + datetime.timedelta(hours=1)
    again = export_project(root, None, fixed_images, keys_for(cluster, env_key, out, later)).files
    write_export(out, again)
    assert (out / "apps/dev/secrets.yaml").read_bytes() == first          # same plaintext, same recipients
    write_export(other, again)                                             # so the whole export is the same bytes
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == sorted(p.relative_to(other) for p in other.rglob("*"))
    for path in out.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (other / path.relative_to(out)).read_bytes(), path

    write_secrets(root, "dev", {**VALUES, "db": {"password": "rotated-pw"}}, env_key.identities, later)
    write_export(out, export_project(root, None, fixed_images, keys_for(cluster, env_key, out, later)).files)
    rolled = pod_fingerprint(kubectl, out, "api")
    changed = (out / "apps/dev/secrets.yaml").read_text()
    assert changed.encode() != first and "rotated-pw" not in changed
    assert pod_fingerprint(kubectl, out, "api") not in (None, pods)   # a changed value rolls the pods, as a release
    assert yaml_load(cluster.sops("decrypt", "apps/dev/secrets.yaml", cwd=out).stdout)["stringData"][
        "db.password"] == "rotated-pw"
    fingerprint = yaml_load(changed)["metadata"]["annotations"][FINGERPRINT_ANNOTATION]

    second = make_keyring(tmp_path / "second-cluster")
    recipients = (cluster.public, second.public)
    write_export(out, export_project(root, None, fixed_images,
                                     keys_for(cluster, env_key, out, later, recipients)).files)
    widened = yaml_load((out / "apps/dev/secrets.yaml").read_text())
    assert widened["metadata"]["annotations"][FINGERPRINT_ANNOTATION] != fingerprint
    assert pod_fingerprint(kubectl, out, "api") == rolled   # a new recipient changes no value: no new pods
    assert yaml_load(second.sops("decrypt", "apps/dev/secrets.yaml", cwd=out).stdout)["stringData"][
        "payments.api_key"] == "sk_live_51Hx-export-secret"


def test_secrets_without_the_clusters_recipient_are_refused(tmp_path, keys):
    env_key, _ = keys
    root = secret_project(tmp_path / "p", env_key)
    with pytest.raises(ExportError, match=r"environment dev: its services use secrets \(db.password, "
                                          r"payments.api_key\).*--age-recipient"):
        export_project(root, None, fixed_images)


def test_a_project_without_secrets_needs_no_recipient_and_no_decryption(tmp_path):
    root = write_project(tmp_path / "p", [probe_service("web")])
    result = export_project(root, None, fixed_images)
    assert "apps/dev/secrets.yaml" not in result.files
    assert "decryption" not in result.files["clusters/dev/flux.yaml"]
