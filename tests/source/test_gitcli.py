"""Tests of how git's stderr becomes a one-line reason."""

from __future__ import annotations

import pytest

from shipyard.source.gitcli import summarise


@pytest.mark.parametrize(
    "stderr, reason",
    [
        (
            (
                "fatal: '/x' does not appear to be a git repository\n"
                "fatal: Could not read from remote repository.\n\n"
                "Please make sure you have the correct access rights\nand the repository exists.\n"
            ),
            "repository not found",
        ),
        (
            "remote: Repository not found.\nfatal: repository 'https://h/x/' not found\n",
            "repository not found",
        ),
        ("fatal: unable to access 'https://h/': Could not resolve host: h\n", "could not resolve host"),
        ("ssh: connect to host h port 22: Connection refused\n", "connection refused"),
        (
            "fatal: could not read Username for 'https://h': terminal prompts disabled\n",
            "authentication failed (no usable credentials)",
        ),
        ("git@h: Permission denied (publickey).\n", "authentication failed (no usable credentials)"),
        ("hint: something\nerror: could not revert abc... x\nhint: more\n", "could not revert abc... x"),
        ("warning: odd\n", "odd"),
        ("", "git failed without a message"),
        ("fatal: " + "x" * 300, "x" * 197 + "..."),
    ],
)
def test_summarise(stderr: str, reason: str) -> None:
    assert summarise(stderr) == reason
