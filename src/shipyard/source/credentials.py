"""Git credentials without a secret in argv or in the store: git asks a credential helper that reads the env.

A token reaches Shipyard in `SHIPYARD_GIT_TOKEN`, or inside an https URL (`https://user:TOKEN@host/repo`),
which `shipyard up` splits: the URL without the token is what is stored and passed on, the token goes
to `<mirror dir>/credentials` (0600). For each fetch, git gets `-c credential.helper=` (which empties
the helpers of the user's config, so no `store` helper writes our token to disk) and then a helper that
prints the username and password from its environment: git's own credential mechanism, with nothing
secret on any command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

TOKEN_ENV = "SHIPYARD_GIT_TOKEN"
CREDENTIALS_FILE = "credentials"
_USER_ENV, _PASSWORD_ENV = "SHIPYARD_GIT_USERNAME", "SHIPYARD_GIT_PASSWORD"
_HELPER = (f'!f() {{ test "$1" = get || exit 0; printf "username=%s\\npassword=%s\\n" "${_USER_ENV}" '
           f'"${_PASSWORD_ENV}"; }}; f')


def split_credentials(url: str) -> tuple[str, str | None]:
    """(URL without its password, the password) for an http(s) URL; other URLs are returned as they are."""
    if "://" not in url:
        return url, None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, sep, password = userinfo.partition(":")
    if not sep:
        return url, None
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host)), unquote(password) or None


def save_password(directory: Path, password: str) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    os.chmod(path, 0o600)


def load_password(directory: Path) -> str | None:
    """SHIPYARD_GIT_TOKEN, else what `save_password` kept in DIRECTORY, else None."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    try:
        return (directory / CREDENTIALS_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def helper_args() -> list[str]:
    """git options that make the env-reading helper the only credential helper."""
    return ["-c", "credential.helper=", "-c", f"credential.helper={_HELPER}"]


def helper_env(url: str, password: str) -> dict[str, str]:
    """The environment the helper reads: the URL's username (or x-access-token, as GitHub/Gitea accept)."""
    user = unquote(urlsplit(url).username or "") if "://" in url else ""
    return {_USER_ENV: user or "x-access-token", _PASSWORD_ENV: password}
