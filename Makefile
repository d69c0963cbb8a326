# langchain-customllm developer commands. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8765
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: setup demo server stop-server test unit integration lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

## Start the embedded default server (llama.cpp + SmolLM2 on 127.0.0.1:$(PORT)); installs it first.
server: setup
	$(PY) scripts/local_server.py start --port $(PORT)

stop-server:
	$(PY) scripts/local_server.py stop --port $(PORT)

## Bring the local server up and stream a ChatPromptTemplate | ChatCustomLLM chain.
demo: server
	CUSTOMLLM_BASE_URL=http://127.0.0.1:$(PORT)/v1 $(PY) examples/demo.py
	@echo "The server keeps running on 127.0.0.1:$(PORT); 'make stop-server' stops it."

## Unit tests: no network at all (TCP sockets disabled, loopback included; asyncio needs its
## own unix socketpair, which is allowed).
unit: setup
	$(PYTEST) tests/unit_tests --disable-socket --allow-unix-socket --benchmark-disable -q

## Integration tests against a real llama.cpp server the tests start on loopback.
integration: setup
	$(PYTEST) tests/integration_tests --allow-hosts=127.0.0.1 -q

test: unit integration

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .hypothesis
