# Quick start:  make test-profile   (installs into .venv, runs the pipeline on the test profile)
#               make test           (installs into .venv if needed, runs the test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUTDIR ?= results

.PHONY: install test-profile test benchmark sync-config clean

$(BIN)/scdeal: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/scdeal

install: $(BIN)/scdeal

test-profile: install
	$(BIN)/scdeal run -profile test --outdir $(OUTDIR)

test: install
	$(BIN)/python -m pytest -q

# after editing a step's settings: regenerate the Nextflow params, schema, flags and docs tables from them
sync-config: install
	$(BIN)/scdeal sync-config

benchmark: install
	$(BIN)/python benchmarks/accuracy.py

clean:
	rm -rf $(VENV) $(OUTDIR) .pytest_cache
