"""A remote store: any OCI distribution registry (`HOST[:PORT]/PREFIX`), reached through the `oras` client.

Credentials: SHIPYARD_REGISTRY_USERNAME / SHIPYARD_REGISTRY_PASSWORD, else the registry's entry in
`~/.docker/config.json` (auths, credHelpers, credsStore, as `oras` reads them). Plain HTTP is used for
loopback hosts (a local registry) or when the location starts with `http://`; HTTPS otherwise.
Every manifest and blob read back is verified against its digest.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import oras.container
import oras.provider
import requests

from shipyard.artifacts import oci
from shipyard.artifacts.errors import ArtifactError, NotFound
from shipyard.artifacts.layout import _version_key

ACCEPT = [oci.MANIFEST, oci.DOCKER_MANIFEST, oci.INDEX, oci.DOCKER_LIST]
CONNECT_TIMEOUT = 5.0
CREDENTIALS_HINT = "set SHIPYARD_REGISTRY_USERNAME/PASSWORD or log in with ~/.docker/config.json"
logging.getLogger("oras").setLevel(logging.CRITICAL)   # its own logging would print credentials hints


class RegistryStore:
    """Artifacts in an OCI distribution registry; NAME lives in the repository PREFIX/NAME."""

    def __init__(self, location: str) -> None:
        self.insecure = location.startswith("http://")
        text = location.removeprefix("http://").removeprefix("https://").rstrip("/")
        self.host, _, self.prefix = text.partition("/")
        hostname = self.host.split(":")[0]
        if hostname in ("localhost", "127.0.0.1", "::1") or hostname.startswith("127."):
            self.insecure = True
        self._client = oras.provider.Registry(hostname=self.host, insecure=self.insecure, auth_backend="basic")
        user, password = os.environ.get("SHIPYARD_REGISTRY_USERNAME"), os.environ.get("SHIPYARD_REGISTRY_PASSWORD")
        if user and password:
            self._client.auth.set_basic_auth(user, password)
        else:
            self._client.auth.load_configs(self._container("x"))
        if not getattr(self._client.auth, "_basic_auth", None):
            self._client.auth._logout()   # no credentials: a 401 is answered, not retried for a minute
        self._reachable = False

    @property
    def location(self) -> str:
        return f"{self.host}/{self.prefix}" if self.prefix else self.host

    def names(self) -> list[str]:
        response = self._request("/v2/_catalog", "GET")
        repositories = response.json().get("repositories") or []
        start = f"{self.prefix}/" if self.prefix else ""
        return sorted(r[len(start):] for r in repositories if r.startswith(start) and "/" not in r[len(start):])

    def versions(self, name: str) -> list[str]:
        response = self._request(self._container(name).tags_url(), "GET", full=True)
        if response.status_code == 404:
            raise NotFound(f"artifact {name!r} is not in the registry {self.location}")
        self._check(response, f"the tags of {name}")
        return sorted(response.json().get("tags") or [], key=_version_key)

    def resolve(self, name: str, version: str) -> str:
        response = self._request(self._container(name, version).manifest_url(), "HEAD",
                                 {"Accept": ", ".join(ACCEPT)}, full=True)
        if response.status_code == 404:
            versions = self.versions(name) if self._exists(name) else []
            raise NotFound(f"{name}:{version} is not in the registry {self.location} (versions: "
                           f"{', '.join(versions) or 'none'})", versions)
        self._check(response, f"{name}:{version}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            digest = oci.sha256(self._get(self._container(name, version).manifest_url(), f"{name}:{version}"))
        return digest

    def push(self, name: str, version: str, image: oci.Image) -> str:
        self._ping()
        container = self._container(name, version)
        manifest = oci.parse_json(image.manifest, "manifest")
        if oci.canonical(manifest) != image.manifest:
            raise ArtifactError("the manifest is not in canonical form; it would change digest when pushed")
        with tempfile.TemporaryDirectory(prefix="shipyard-push-") as tmp:
            for digest, data in image.blobs.items():
                path = Path(tmp) / digest.replace(":", "_")
                path.write_bytes(data)
                layer = {"digest": digest, "size": len(data), "mediaType": "application/octet-stream"}
                response = self._call(self._client.upload_blob, str(path), container, layer)
                self._check(response, f"upload of blob {digest}")
        response = self._call(self._client.upload_manifest, manifest, container)
        self._check(response, f"upload of {name}:{version}")
        pushed = response.headers.get("Docker-Content-Digest")
        if pushed and pushed != image.digest:
            raise ArtifactError(f"the registry stored {name}:{version} as {pushed}, expected {image.digest}")
        return image.digest

    def manifest(self, name: str, digest: str) -> bytes:
        data = self._get(self._container(name, digest).manifest_url(), f"{name}@{digest}",
                         {"Accept": ", ".join(ACCEPT)})
        return oci.verify(data, digest, f"manifest {name}@{digest} from {self.location}")

    def blob(self, name: str, digest: str) -> bytes:
        data = self._get(self._container(name).get_blob_url(digest), f"blob {name}@{digest}")
        return oci.verify(data, digest, f"blob {name}@{digest} from {self.location}")

    # ---- through oras ------------------------------------------------------------------------------
    def _container(self, name: str, reference: str | None = None) -> oras.container.Container:
        repository = f"{self.prefix}/{name}" if self.prefix else name
        separator = "@" if reference and reference.startswith("sha256:") else ":"
        text = f"{self.host}/{repository}" + (f"{separator}{reference}" if reference else "")
        return oras.container.Container(text)

    def _exists(self, name: str) -> bool:
        return self._request(self._container(name).tags_url(), "GET", full=True).status_code == 200

    def _get(self, url: str, what: str, headers: dict[str, str] | None = None) -> bytes:
        response = self._request(url, "GET", headers, full=True)
        if response.status_code == 404:
            raise NotFound(f"{what} not found in the registry {self.location}")
        self._check(response, what)
        return response.content

    def _request(self, url: str, method: str, headers: dict[str, str] | None = None,
                 full: bool = False) -> requests.Response:
        self._ping()
        if not full:
            url = f"{self.host}{url}"
        response = self._call(self._client.do_request, f"{self._client.prefix}://{url}", method,
                              headers=dict(headers or {}))
        if not full:
            self._check(response, url)
        return response

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except requests.RequestException as exc:
            raise ArtifactError(f"registry {self.location}: {exc}") from exc
        except ValueError as exc:
            if "UNAUTHORIZED" in str(exc) or "DENIED" in str(exc):
                raise ArtifactError(f"registry {self.location}: unauthorized; {CREDENTIALS_HINT}") from exc
            raise ArtifactError(f"registry {self.location}: {exc}") from exc

    def _ping(self) -> None:
        """Fail fast (oras retries for a minute on a refused connection)."""
        if self._reachable:
            return
        try:
            self._client.session.get(f"{self._client.prefix}://{self.host}/v2/", timeout=CONNECT_TIMEOUT,
                                     verify=not self.insecure)
        except requests.RequestException as exc:
            raise ArtifactError(f"cannot reach the registry {self.location}: {type(exc).__name__}") from exc
        self._reachable = True

    def _check(self, response: requests.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise ArtifactError(f"registry {self.location} refused {what}: unauthorized (HTTP "
                                f"{response.status_code}); {CREDENTIALS_HINT}")
        if response.status_code >= 300:
            raise ArtifactError(f"registry {self.location}: {what} failed: HTTP {response.status_code} "
                                f"{_errors(response)}")


def _errors(response: requests.Response) -> str:
    try:
        return "; ".join(str(e.get("message")) for e in response.json().get("errors", []))
    except ValueError:
        return response.reason or ""
