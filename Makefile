# Two commands do all set-up on a fresh machine (Python >= 3.11, Java 17 and Maven installed):
#   make up     create .venv, install, run `chargeledger up` on the embedded defaults
#   make test   create .venv, install, resolve Kafka, run lint, types and every test
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install up test kafka-up kafka-down bench clean

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "chargeledger needs Python 3.11 or newer: run make with PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	@touch $@

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/chargeledger up $(ARGS)

test: $(STAMP)
	deploy/kafka.sh fetch
	scripts/check

# A local broker on 127.0.0.1:9092 for `chargeledger up --log kafka://127.0.0.1:9092`.
kafka-up:
	deploy/kafka.sh start

kafka-down:
	deploy/kafka.sh stop

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/log_append.py
	$(VENV)/bin/python benchmarks/gateway_load.py run
	$(VENV)/bin/python benchmarks/ledger_replay.py
	$(VENV)/bin/python benchmarks/replay.py
	$(VENV)/bin/python benchmarks/fault_injection.py
	$(VENV)/bin/python benchmarks/api_load.py
	$(VENV)/bin/python benchmarks/console_pages.py
	$(VENV)/bin/python benchmarks/session_fold.py
	$(VENV)/bin/python benchmarks/scale.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
