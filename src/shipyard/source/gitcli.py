"""Running the git CLI: the URLs it may reach, a clean environment, timeouts, one-line errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shipyard.source.errors import SourceError

# Variables that point git at another repository, index or config (`git rev-parse --local-env-vars`):
# inherited from a parent git process (a hook, `git rebase --exec`), they would redirect every command.
_REPOSITORY_VARS = frozenset(
    [
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
    ]
)

# Short reasons for users, each with the git messages that mean it (regular expressions); first wins.
_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile("|".join(messages), re.IGNORECASE))
    for reason, messages in (
        ("could not resolve host", [r"could not resolve host", r"name or service not known"]),
        ("connection refused", [r"connection refused", r"couldn't connect to server", r"failed to connect"]),
        ("connection timed out", [r"timed out"]),
        (
            "authentication failed (no usable credentials)",
            [
                r"authentication failed",
                r"terminal prompts disabled",
                r"could not read username",
                r"permission denied \(publickey",
                r"host key verification failed",
            ],
        ),
        (
            "repository not found",
            [
                r"repository .*not found",
                r"does not appear to be a git repository",
                r"could not read from remote repository",
            ],
        ),
        ("TLS certificate rejected", [r"ssl certificate problem", r"server certificate verification failed"]),
        ("nothing to commit: the changes are already undone", [r"nothing to commit"]),
    )
)
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:org/repo.git
_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
_MESSAGE_PREFIX = re.compile(r"^(fatal|error|remote|warning):\s*", re.IGNORECASE)


@dataclass(frozen=True)
class GitResult:
    """What one git command returned."""

    returncode: int
    stdout: str
    stderr: str


def _git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for git: never prompts, English messages, only network-safe transports."""
    env = {key: value for key, value in os.environ.items() if key not in _REPOSITORY_VARS}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GCM_INTERACTIVE="never",
        LC_ALL="C",
        LANGUAGE="C",
        GIT_ALLOW_PROTOCOL="file:git:http:https:ssh",
    )
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> GitResult:
    """Run `git ARGS`; on timeout kill git and its children (ssh, upload-pack) and raise SourceError."""
    # A session of its own, so that a timeout can kill the children too and so that ssh has no
    # terminal to ask a passphrase on.
    process = subprocess.Popen(
        ["git", *args],
        env=_git_env(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise SourceError(f"git {_subcommand(args)} timed out after {timeout:g}s") from None
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    return GitResult(process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _subcommand(args: Sequence[str]) -> str:
    """The git subcommand of ARGS, for messages (`fetch`, `checkout-index`)."""
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg in ("-C", "-c", "--git-dir", "--work-tree"):
            skip_next = True
        elif not arg.startswith("-"):
            return arg
    return " ".join(args)


def summarise(stderr: str) -> str:
    """git's stderr as one short line: a known reason, else its first fatal/error line."""
    for reason, pattern in _REASONS:
        if pattern.search(stderr):
            return reason
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = next((line for line in lines if re.match(r"(fatal|error):", line, re.IGNORECASE)), None)
    line = _MESSAGE_PREFIX.sub("", chosen or (lines[0] if lines else "git failed without a message"))
    return line if len(line) <= 200 else line[:197] + "..."


def normalize_url(url: str | Path) -> str:
    """URL as git will be given it: a supported URL as it is, or a local path made absolute."""
    text = str(url)
    if isinstance(url, Path) or ("://" not in text and not _SCP_LIKE.match(text)):
        return str(Path(text).expanduser().resolve())
    scheme = text.split("://", 1)[0].lower() if "://" in text else "ssh"
    if scheme not in _SCHEMES:
        raise SourceError(
            f"unsupported repository URL {redact_url(text)}: use https://, ssh://, file:// or a path"
        )
    return text


def redact_url(url: str) -> str:
    """URL without the password or token an https URL may carry."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
    return url
