# The two commands: `make run` (a job server on port 4730) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 4730
JOBS ?= 2

# Debian packages the interoperability tests talk to.
SYSTEM_PACKAGES := gearman-job-server gearman-tools php-cli php-gearman libgearman-client-perl curl redis-server redis-sentinel postgresql mariadb-server chromium chromium-driver pypy3 pypy3-venv tmux gcc libc6-dev libgearman-dev

.PHONY: run test lint run-deps deps system-deps pypy docs bench changelog clean

# The installed plugin, not the checkout on PYTHONPATH: what users get.
run: run-deps
	$(BIN)/twistd -n --pidfile= gearman --port $(PORT)

test: deps system-deps pypy docs
	$(BIN)/python scripts/trial-summary --jobs=$(JOBS) tests

# ruff (configured in pyproject.toml) and mypy (mypy.ini names its files),
# as tests/test_lint.py and tests/test_typing.py run them in `make test`;
# both report before the target fails.
LINT_PATHS := gearman_tw tests twisted benchmarks scripts

lint: deps
	status=0; \
	$(BIN)/python -m ruff check $(LINT_PATHS) || status=1; \
	$(BIN)/python -m mypy --config-file mypy.ini || status=1; \
	exit $$status

# Tests, docs and benchmarks also run this tree under other interpreters.
test docs bench: export PYTHONPATH := $(CURDIR)

# `make run` needs only the package (editable, so edits take effect on the
# next start) and what it installs with; `make test` adds its tools to the
# same virtualenv.
run-deps: $(VENV)/.run-installed

deps: $(VENV)/.installed

$(VENV)/.run-installed: setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.run-installed requirements-test.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

# The server under PyPy (tests/integration/test_pypy.py, bench --python).
pypy: .venv-pypy/.installed

.venv-pypy/.installed: requirements-test.txt
	pypy3 -m venv .venv-pypy
	.venv-pypy/bin/pip install --quiet twisted zope.interface
	touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi

# Our server against C gearmand, same run: see benchmarks/bench.py --help.
bench: deps system-deps
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

docs: deps
	$(BIN)/sphinx-build -q -W -b html docs docs/_build/html

# The next release's NEWS.rst entry, from newsfragments/ (nothing is written).
changelog: deps
	$(BIN)/python -m towncrier build --draft

clean:
	rm -rf $(VENV) .venv-pypy docs/_build _trial_temp build gearman_tw.egg-info
