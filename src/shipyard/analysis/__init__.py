"""Canary analysis: window statistics, checks, the judge, step decisions and metric providers."""
