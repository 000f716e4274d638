# Two commands on a fresh machine: `make demo` and `make test`. Both go through `make setup`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	@./scripts/system-deps.sh
	@./scripts/ui-assets.sh
	@./scripts/shop-artifacts.sh

demo: setup
	$(BIN)/shipyard validate examples/shop
	./scripts/demo.sh

# Most of the suite waits on processes (control planes, Envoy, instances), so 4 workers on 2 cores pay off;
# --dist loadgroup spreads tests one by one, keeping a file with shared module fixtures on one worker
# (tests/conftest.py). Tests take free ports only, and each worker its own caches.
test: setup
	$(BIN)/python -m pytest -q -n 4 --dist loadgroup $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .shipyard
