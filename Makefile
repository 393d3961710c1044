# One-command entry points for a fresh Debian/Ubuntu machine: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system python demo test lint bench chart-assets

setup: system python

system:
	@command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus prometheus-alertmanager python3-venv; }

python: $(BIN)/tenantpulse

$(BIN)/tenantpulse: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

demo: setup
	$(BIN)/tenantpulse demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q -ra

lint: python
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: python
	$(BIN)/python -m benchmarks

chart-assets: python
	$(BIN)/tenantpulse generate chart
