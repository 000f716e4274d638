"""Shipyard: microservices from a laptop to production, from one git repository."""

__version__ = "0.1.0"
