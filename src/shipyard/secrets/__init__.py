"""Secrets encrypted in git: the SOPS file format with age recipients, keys, and secret references of services."""
