"""Following a git repository: fetch, validate and apply each new commit atomically; history, drift, rollback."""
