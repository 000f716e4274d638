"""Backing services of an environment: one PostgreSQL server, a database and a role per service."""
