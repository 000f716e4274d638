"""A source directory → one OCI app image: its files under /app, the command, env and health hints in the
config, provenance in the manifest's annotations. The same inputs always give the same digest."""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shipyard.artifacts import oci
from shipyard.artifacts.descriptor import DEFAULT_EXCLUDE, FILE_NAME, ArtifactFile, load_descriptor
from shipyard.artifacts.errors import ArtifactError


@dataclass(frozen=True)
class SourceInfo:
    url: str            # org.opencontainers.image.source
    revision: str       # the commit, or "unknown" outside git
    dirty: bool         # uncommitted changes under the source dir
    epoch: int          # the created time: commit time when clean, else the newest included file


def select_files(source: Path, descriptor: ArtifactFile) -> list[Path]:
    """The files to ship, sorted: matching `include` (default everything), not `exclude` nor the defaults."""
    excluded = (*DEFAULT_EXCLUDE, *descriptor.exclude)
    chosen = []
    for root, dirs, files in os.walk(source):
        rel_root = Path(root).relative_to(source)
        dirs[:] = sorted(d for d in dirs if not _matches((rel_root / d).as_posix(), excluded)
                         and not (Path(root) / d).is_symlink())
        for name in sorted(files) + [d for d in os.listdir(root) if (Path(root) / d).is_symlink()
                                     and (Path(root) / d).is_dir()]:
            relative = (rel_root / name).as_posix()
            if _matches(relative, excluded):
                continue
            if any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) or relative.startswith(p.rstrip("/") + "/")
                   for p in descriptor.include) or relative == FILE_NAME:
                chosen.append(Path(root) / name)
    return sorted(set(chosen))


def _matches(relative: str, patterns: tuple[str, ...]) -> bool:
    parts = relative.split("/")
    return any(fnmatch.fnmatch(relative, p) or any(fnmatch.fnmatch(part, p) for part in parts) for p in patterns)


def source_info(source: Path, files: list[Path]) -> SourceInfo:
    """Git revision and dirtiness of SOURCE (Kamal-style `-dirty` marking), its remote, a stable created time."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    newest = max((int(f.lstat().st_mtime) for f in files), default=0)
    revision = git("rev-parse", "HEAD")
    if revision is None:
        return SourceInfo(source.resolve().as_uri(), "unknown", True, int(os.environ.get("SOURCE_DATE_EPOCH", newest)))
    dirty = bool(git("status", "--porcelain", "--untracked-files=normal", "--", "."))
    url = git("config", "--get", "remote.origin.url") or Path(git("rev-parse", "--show-toplevel") or source).as_uri()
    commit_time = int(git("log", "-1", "--format=%ct") or newest)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", newest if dirty else commit_time))
    return SourceInfo(url, revision, dirty, epoch)


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Built:
    """An image before its manifest: what is tested and shipped (config, layers), and its provenance."""

    descriptor: ArtifactFile
    config: dict[str, Any]
    layers: list[oci.Layer]
    annotations: dict[str, str]

    def image(self, pipeline: list[dict[str, Any]] | None = None) -> oci.Image:
        """The image, with PIPELINE (stage results) in its provenance when given."""
        annotations = dict(self.annotations)
        if pipeline is not None:
            annotations[oci.PIPELINE] = oci.canonical({"stages": pipeline}).decode()
        return oci.assemble(self.config, self.layers, annotations)


def build_image(source: Path, version: str, pipeline: list[dict[str, Any]] | None = None,
                descriptor: ArtifactFile | None = None) -> tuple[ArtifactFile, oci.Image]:
    """The app image of SOURCE at VERSION; PIPELINE (stage results) goes into its provenance."""
    built = build(source, version, descriptor)
    return built.descriptor, built.image(pipeline)


def build(source: Path, version: str, descriptor: ArtifactFile | None = None) -> Built:
    """Read SOURCE once into the layer, config and provenance of its app image."""
    descriptor = descriptor or load_descriptor(source)
    if descriptor.base != "host":
        raise ArtifactError(f"{source / FILE_NAME}: base {descriptor.base!r}: `shipyard build` makes app images "
                            "(`base: host`); build full images with Docker/Buildah and run them by name")
    files = select_files(source, descriptor)
    info = source_info(source, files)
    entries = [oci.FileEntry(oci.APP_DIR, None)]
    for path in files:
        relative = f"{oci.APP_DIR}/{path.relative_to(source).as_posix()}"
        if path.is_symlink():
            entries.append(oci.FileEntry(relative, None, link=os.readlink(path)))
        else:
            mode = path.stat().st_mode
            entries.append(oci.FileEntry(relative, path.read_bytes(), bool(mode & stat.S_IXUSR)))
    for directory in sorted({str(Path(e.path).parent) for e in entries} - {".", oci.APP_DIR}):
        entries.append(oci.FileEntry(directory, None))
    layer = oci.make_layer(_dedupe(entries), info.epoch)
    created = rfc3339(info.epoch)
    labels = {oci.BASE: "host"}
    if descriptor.health.readiness:
        labels[oci.HEALTH_READINESS] = descriptor.health.readiness
    if descriptor.health.liveness:
        labels[oci.HEALTH_LIVENESS] = descriptor.health.liveness
    config = oci.image_config(descriptor.command, descriptor.env, f"/{oci.APP_DIR}", created, [layer.diff_id], labels)
    revision = info.revision + ("-dirty" if info.dirty else "")
    annotations = {oci.SOURCE: info.url, oci.REVISION: revision, oci.VERSION: version, oci.CREATED: created,
                   oci.TITLE: descriptor.name, oci.BASE: "host", oci.DIRTY: str(info.dirty).lower()}
    return Built(descriptor, config, [layer], annotations)


def _dedupe(entries: list[oci.FileEntry]) -> list[oci.FileEntry]:
    seen: dict[str, oci.FileEntry] = {}
    for entry in entries:
        seen.setdefault(entry.path, entry)
    return list(seen.values())
