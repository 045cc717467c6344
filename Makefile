# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint typecheck unit docs test-lowest bench clean redis-server

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m arena_async demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy --strict arena_async

# The share tests need a real redis-server: installed here when missing and we are root.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null \
	      || echo "could not install redis-server; the Redis tests will skip (fail under CI)"; \
	  else echo "redis-server missing: apt-get install redis-server (Redis tests skip)"; fi; }

# The suite on two processes (pytest-xdist; CI has 2 cores too): every test, about half
# the time of one process. `.venv/bin/pytest -q` alone runs the same tests in one process.
PYTEST_PARALLEL ?= -n 2 --dist worksteal

unit: $(VENV)/.installed redis-server
	$(VENV)/bin/pytest -q $(PYTEST_PARALLEL)

# The documentation site (mkdocs.yml, docs/): built with --strict, so a broken link or
# reference fails; the site goes to a temporary directory.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"

test: lint typecheck unit docs

# The dependency floors in pyproject.toml: a second venv with the lowest versions they
# allow of every direct dependency (uv --resolution lowest-direct), then the test suite.
LOWEST := $(VENV)/lowest
$(LOWEST)/.installed: pyproject.toml $(VENV)/.installed
	rm -rf $(LOWEST)
	$(VENV)/bin/uv venv --quiet --python $(PY) $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(VENV)/bin/uv pip install --quiet --resolution lowest-direct -e '.[dev]'
	touch $@

# The tests that exercise no dependency floor (other processes, type checkers, timings)
# already ran in `make test`: they are left out here to keep CI well under its limit.
FLOOR_INSENSITIVE := tests/share/test_multiprocess.py tests/test_fastapi_workers.py \
	tests/test_benchmarks_smoke.py tests/test_typing.py tests/test_verifytypes.py \
	tests/test_plugin_without_pytest_asyncio.py

test-lowest: $(LOWEST)/.installed redis-server
	$(LOWEST)/bin/python -m pytest -q $(PYTEST_PARALLEL) $(addprefix --ignore=,$(FLOOR_INSENSITIVE))

bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py

# Mutation testing of the core modules (about 1.5 hours; not run in CI): docs/mutation.md.
# One module: make mutate MUTATE=arena_async/_retry.py
.PHONY: mutate
MUTATE ?= --all
mutate: $(VENV)/.installed
	nice -n 19 $(PY) tools/mutate.py $(MUTATE) --write docs/mutation.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
