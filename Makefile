# `make run` and `make test` work on a fresh machine with nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean fuzz nginx bench wrk

install: $(STAMP) /usr/bin/chromium

# the browser test drives Debian's Chromium (no browser download); runs only when it is missing
/usr/bin/chromium:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/pathpro dev

test: install nginx wrk
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check service tests

# the topology tests run nginx from Debian's packages (not the system service: a config of their own)
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light; \
	  else echo "nginx is missing: run 'sudo apt-get install nginx-light'" >&2; exit 1; fi; }

# the load generator of the benchmark (and of its smoke run in the suite), from Debian's packages
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 wrk; \
	  else echo "wrk is missing: run 'sudo apt-get install wrk'" >&2; exit 1; fi; }

# the schemathesis run of `make test`, for ten minutes and many more examples
fuzz: install
	PATHPRO_FUZZ_EXAMPLES=$${PATHPRO_FUZZ_EXAMPLES:-300} PATHPRO_FUZZ_SECONDS=$${PATHPRO_FUZZ_SECONDS:-600} \
	  $(BIN)/pytest tests/prod/test_contract.py

# not part of `make test`: minutes of load; writes its table into tests/bench/BENCHMARKS.md
bench: install wrk
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) .data
