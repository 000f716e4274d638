"""Real git repositories for the gitops tests (the source tests' fixtures, with the developer's git config kept out)."""

from tests.source.conftest import isolated_git, origin  # noqa: F401 - fixtures
