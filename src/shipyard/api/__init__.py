"""The control plane's HTTP API (thin: parse, call the engine, render JSON)."""
