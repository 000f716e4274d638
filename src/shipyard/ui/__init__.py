"""The web dashboard served by the control plane at /ui (pages.py, views.py, live.py, templates/, static/)."""
