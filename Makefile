# mailintake: `make run` serves the web UI and REST API; `make test` runs the whole suite.
# Python 3.12 or 3.13 when the machine has one, else python3 (scripts/find-python.sh says why).
PYTHON ?= $(shell sh scripts/find-python.sh)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test pytest lint typecheck unit services bench clean demo screenshots lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs take the versions pinned in constraints.txt (`make lock` renews it); pyproject.toml
# keeps the ranges the package accepts.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/mailintake serve --host $(HOST) --port $(PORT)

services:
	@sh scripts/install-test-services.sh

# The sandbox identity provider, Graph emulator and Dovecot with seeded mail, and serve on them.
demo: $(VENV)/.installed-test services
	PYTHONPATH=. $(BIN)/python -m sandbox.demo --home $${DEMO_HOME:-.demo} --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests sandbox benchmarks
	$(BIN)/ruff format --check src tests sandbox benchmarks
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_layers.py

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# Lint, types and the tests run side by side (each one's output printed when it ends); any
# failure fails `make test`. The tests run in PYTEST_WORKERS processes and end with the
# coverage of src/mailintake; compiled modules are kept (__pycache__), so that the workers and
# the commands the tests start do not compile the same sources again. Seven processes on two
# cores: many tests wait (on intervals, leases, servers, the processes they start), and the
# others use the time (with six, both cores were idle for ~22 core-seconds of a run; with
# seven, ~13).
PYTEST_WORKERS ?= 7
test: $(VENV)/.installed-test services
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint typecheck pytest

# In a fresh clone the test modules are compiled once first (scripts/compile-tests.sh), not
# by each test process at once.
#
# From Python 3.12 coverage measures through sys.monitoring (`core` in pyproject.toml): the
# suite takes about 40 % less CPU than under the 3.11 tracer, for the same lines counted.
#
# The tests' temporary files go to memory (/dev/shm) when the machine has room there
# (scripts/test-tmpdir.sh; MAILINTAKE_TEST_ON_DISK=1 keeps them on disk): the suite writes and
# removes tens of thousands of small files, and on ext4 that took a fifth of the crash and
# Dovecot tests' CPU.
pytest: $(VENV)/.installed-test
	env -u PYTHONDONTWRITEBYTECODE sh scripts/compile-tests.sh $(BIN)/python
	env -u PYTHONDONTWRITEBYTECODE TMPDIR="$$(sh scripts/test-tmpdir.sh)" \
	    $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=15 --cov --cov-report=term

# Refreshes the web admin's pictures in docs/images/web-admin (test runs never write in docs/).
screenshots: $(VENV)/.installed-test services
	MAILINTAKE_SCREENSHOTS_DIR=$(CURDIR)/docs/images/web-admin $(BIN)/python -m pytest tests/e2e -q

# Long measurements, not part of `make test`: prints rates and ratios measured in one run.
$(VENV)/.installed-bench: pyproject.toml constraints.txt | $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $@

bench: $(VENV)/.installed-bench services
	@MAILINTAKE_TEST_PACKAGES=fetchmail sh scripts/install-test-services.sh
	PYTHONPATH=. $(BIN)/python -m benchmarks.bench_imap --messages $${MESSAGES:-10000}
	PYTHONPATH=. $(BIN)/python -m benchmarks.bench_graph --messages $${GRAPH_MESSAGES:-400}
	PYTHONPATH=. $(BIN)/python -m benchmarks.bench_memory --megabytes $${LARGE_MB:-200}
	PYTHONPATH=. $(BIN)/python -m benchmarks.bench_fleet --mailboxes $${FLEET_MAILBOXES:-1000} \
	    --interval $${FLEET_INTERVAL:-60} --minutes $${FLEET_MINUTES:-5}
	PYTHONPATH=. $(BIN)/python -m benchmarks.bench_push --mailboxes $${PUSH_MAILBOXES:-200} \
	    --samples $${PUSH_SAMPLES:-20} --compare
	PYTHONPATH=. $(BIN)/python -m benchmarks.bench_poll_cost --sizes 0,10000,50000
	PYTHONPATH=. $(BIN)/python -m benchmarks.bench_push_graph --samples $${PUSH_SAMPLES:-20}

# Pins every dependency (and theirs) to the newest versions pyproject.toml's ranges allow today.
LOCK_VENV ?= .venv-lock
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || $(PYTHON) -m venv $(LOCK_VENV)
	test -x $(LOCK_VENV)/bin/pip-compile || $(LOCK_VENV)/bin/python -m pip install --quiet pip-tools
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --extra test --extra bench --strip-extras \
	    --allow-unsafe --no-emit-index-url --no-emit-find-links \
	    --output-file constraints.txt pyproject.toml

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
