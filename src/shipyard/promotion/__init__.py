"""Promotion through environments: automation commits, verification, promotion commits, the version matrix."""
