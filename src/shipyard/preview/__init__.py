"""Previewing and reproducing desired state from git: what a revision would change, and what a past one held."""
