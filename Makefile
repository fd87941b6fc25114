# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shadowroute demo

test: $(STAMP)
	scripts/ensure-chromium
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/capture_overhead.py
	$(BIN)/python bench/proxy_overhead.py
	$(BIN)/python bench/scoring_throughput.py
	$(BIN)/python bench/report_scale.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/router_overhead.py
	$(BIN)/python bench/redaction_cost.py
	$(BIN)/python bench/decision_sim.py

clean:
	rm -rf $(VENV) .pytest_cache shadowroute-demo.db* .shadowroute
