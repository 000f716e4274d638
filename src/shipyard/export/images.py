"""Which image each service runs on a cluster: a registry repository, the version as tag, pinned by digest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from shipyard.errors import ShipyardError
from shipyard.spec.models import Service


class ExportError(ShipyardError):
    """The project cannot be exported as it is (e.g. a service still runs from a directory)."""


@dataclass(frozen=True)
class Image:
    repository: str            # e.g. registry.example.com/shop/catalog
    tag: str                   # the service's version
    digest: Optional[str]      # sha256:…, when the artifact store knows the version

    @property
    def ref(self) -> str:
        """What a Deployment names: by digest when known (re-tagging never changes what runs)."""
        return f"{self.repository}:{self.tag}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"


ImageResolver = Callable[[Service], Image]


def artifact_image(service: Service) -> Optional[str]:
    """The image name a service's artifact refers to, or None for a directory (`artifact.path`)."""
    return getattr(service.artifact, "image", None) or None


def registry_resolver(registry: str, digest_of: Callable[[str, str], Optional[str]]) -> ImageResolver:
    """Images in `registry` (HOST[:PORT]/PREFIX; "" for none: bare names) named after the artifact, tagged
    with the version.

    `digest_of(name, version)` asks the artifact store for the digest; a directory artifact is refused,
    because a cluster runs images, never a directory of the config repository.
    """
    prefix = registry.rstrip("/")

    def resolve(service: Service) -> Image:
        name = artifact_image(service)
        if name is None:
            raise ExportError(f"service {service.name}: `artifact.path` is a directory of the config repository and "
                              "a cluster runs images: build it with `shipyard build` and set `artifact: {image: "
                              f"{service.name}}}` instead")
        repository = f"{prefix}/{name}" if prefix else name   # no registry: the bare name (a gap, see repository)
        return Image(repository, service.version, digest_of(name, service.version))

    return resolve
