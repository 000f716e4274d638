"""Durable state of one control plane (SQLite) and pure condition helpers."""
