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

demo: setup
	$(BIN)/shipyard validate examples/shop
	./scripts/demo.sh

# Most of the suite waits on processes (control planes, Envoy, instances), so 4 workers on 2 cores pay off;
# --dist loadfile keeps a file's tests (and its module fixtures) on one worker. Tests take free ports only.
test: setup
	$(BIN)/python -m pytest -q -n 4 --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .shipyard
