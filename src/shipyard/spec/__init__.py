"""The config repository format: models, loading with source positions, overlays, rendering."""
