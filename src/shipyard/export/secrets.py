"""Secrets on a cluster: per environment a Kubernetes Secret, SOPS-encrypted for the cluster's age key, for Flux.

Shipyard decrypts `secrets/<env>.yaml` with the environment's own key and re-encrypts, with its own SOPS
writer (`shipyard.secrets.sopsfile`), only the values the environment's services use, for the cluster's
age recipients. The Secret's `stringData` is encrypted (`encrypted_regex: ^(data|stringData)$`, as Flux's
guide encrypts Secrets); its metadata stays readable. Flux's kustomize-controller decrypts it when the
cluster's Kustomization has `decryption: {provider: sops, secretRef: {name: sops-age}}`. Keys of the
Secret are the key paths of the secrets file (`payments.api_key`), which are valid Secret keys.

Determinism: SOPS encryption is randomised (a new data key, age's ephemeral key, random IVs), and the
export cannot decrypt its own earlier output (only the cluster can). So the Secret carries a fingerprint
of what it encrypts, an HMAC keyed by a digest of the environment's private key (as a release's secrets
fingerprint is) over the values and the recipients, and an unchanged fingerprint keeps the previous
export's file byte for byte, as `sops` keeps unchanged values. A changed value or recipient writes anew.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from shipyard.export.gaps import Gap
from shipyard.export.images import ExportError
from shipyard.secrets import sopsfile
from shipyard.secrets.files import lookup, read_secrets, relative_name
from shipyard.secrets.keys import parse_recipient, wrap_data_key
from shipyard.secrets.release import as_text
from shipyard.spec.models import SecretRef, Service

Obj = dict[str, Any]
ENCRYPTED_REGEX = "^(data|stringData)$"
FINGERPRINT_ANNOTATION = "shipyard.dev/secrets-fingerprint"
DECRYPTION_SECRET = "sops-age"        # the Secret in flux-system holding the cluster's age key (`age.agekey`)
SECRET_FILE = "secrets.yaml"          # in apps/<env>/


SECRETS_GAP = Gap("", "", "secret values at rest (encrypted in Shipyard's state dir)",
                  "a Kubernetes Secret, decrypted by Flux when it applies it",
                  "on the cluster the values are readable by whoever may read Secrets in the namespace, and are "
                  "encrypted in etcd only if the cluster enables encryption at rest")


def secret_name(project: str) -> str:
    return f"{project}-secrets"


def secret_refs(services: Iterable[Service]) -> list[str]:
    """Every key path the services' `env` takes from the secrets file, sorted."""
    return sorted({value.secret for service in services for value in service.env.values()
                   if isinstance(value, SecretRef)})


def secret_env(service: Service, project: str) -> list[Obj]:
    """The container's env entries for `{secret: key.path}` variables: references to the Secret's keys."""
    return [{"name": variable, "valueFrom": {"secretKeyRef": {"name": secret_name(project), "key": value.secret}}}
            for variable, value in sorted(service.env.items()) if isinstance(value, SecretRef)]


def _no_previous(relative: str) -> str | None:
    return None


@dataclass(frozen=True)
class ClusterKeys:
    """What exporting secrets needs: whom to encrypt for, how to decrypt, and the previous export."""

    recipients: Mapping[str, tuple[str, ...]]                  # environment → its cluster's age recipients
    identities: Callable[[str], list[Any]] = field(repr=False)  # environment → its own age identities
    previous: Callable[[str], str | None] = _no_previous        # relative file → the previous export's text
    now: datetime.datetime = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain_secret(project: str, values: dict[str, str], fingerprint: str) -> Obj:
    """The Secret before encryption (what the cluster gets once Flux has decrypted it)."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_name(project),
                         "labels": {"app.kubernetes.io/part-of": project,
                                    "app.kubernetes.io/managed-by": "shipyard-export"},
                         "annotations": {FINGERPRINT_ANNOTATION: fingerprint}},
            "type": "Opaque", "stringData": dict(values)}


@dataclass(frozen=True)
class ExportedSecret:
    """An environment's exported Secret: its file, and a keyed digest per key path (never a value)."""

    text: str
    digests: dict[str, str] = field(repr=False)

    def pod_annotations(self, service: Service) -> dict[str, str]:
        """For the pod template of a service that reads secrets: a change of its values changes the template,
        so Kubernetes rolls the pods (and Flagger analyses a canary), as a changed value is a new release."""
        refs = sorted({value.secret for value in service.env.values() if isinstance(value, SecretRef)})
        if not refs:
            return {}
        combined = json.dumps([[ref, self.digests[ref]] for ref in refs]).encode()
        return {FINGERPRINT_ANNOTATION: hashlib.sha256(combined).hexdigest()[:16]}


def encrypted_secret(root: Path, project: str, environment: str, keys: list[str],
                     cluster: ClusterKeys | None) -> ExportedSecret:
    """apps/<env>/secrets.yaml: the values at KEYS, encrypted for the environment's cluster."""
    recipients = cluster.recipients.get(environment) if cluster is not None else None
    if cluster is None or not recipients:
        raise ExportError(f"environment {environment}: its services use secrets ({', '.join(keys)}), and a cluster "
                          "decrypts them with its own key: pass --age-recipient age1... (the public key of the "
                          f"cluster's sops-age Secret), or --age-recipient {environment}=age1...")
    for recipient in recipients:
        parse_recipient(recipient)
    identities = cluster.identities(environment)
    tree = read_secrets(root, environment, identities)
    values: dict[str, str] = {}
    for key in keys:
        value = lookup(tree, key)
        if value is None or isinstance(value, (dict, list)):
            raise ExportError(f"{relative_name(environment)}: no value at `{key}`")
        values[key] = as_text(value)
    key = _hmac_key(identities)
    fingerprint = _digest(key, [project, environment, values, sorted(recipients)])[:32]
    digests = {name: _digest(key, [project, environment, name, value]) for name, value in values.items()}
    relative = f"apps/{environment}/{SECRET_FILE}"
    previous = cluster.previous(relative)
    if previous is not None and fingerprint_of(previous) == (fingerprint, sorted(recipients)):
        return ExportedSecret(previous, digests)
    data_key = os.urandom(32)
    metadata = sopsfile.Metadata(age=wrap_data_key(data_key, list(recipients)), lastmodified="", mac="",
                                 encrypted_regex=ENCRYPTED_REGEX)
    document = sopsfile.encrypt(plain_secret(project, values, fingerprint), data_key, metadata, cluster.now)
    return ExportedSecret(sopsfile.dump(document), digests)


def fingerprint_of(text: str) -> tuple[str, list[str]] | None:
    """The fingerprint annotation of an exported Secret file and the recipients it is encrypted for, or None."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
        return (str(data["metadata"]["annotations"][FINGERPRINT_ANNOTATION]),
                sorted(str(entry["recipient"]) for entry in data["sops"]["age"]))
    except (YAMLError, KeyError, TypeError):
        return None


def _hmac_key(identities: list[Any]) -> bytes:
    """Keyed by the environment's private key: without it, nobody can test a guess against a digest."""
    return hashlib.sha256(b"shipyard export secrets\0" + "".join(sorted(map(str, identities))).encode()).digest()


def _digest(key: bytes, message: Any) -> str:
    return hmac.new(key, json.dumps(message, sort_keys=True).encode(), hashlib.sha256).hexdigest()
