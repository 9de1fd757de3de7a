# `make run` and `make test` work on a fresh machine with nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean bench wrk

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/pathpro dev

test: install wrk
	$(BIN)/pytest

# The load generator of the benchmark (and of its smoke run in the suite), from Debian's packages.
wrk:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 wrk)

# Not part of `make test`: minutes of load; writes its table into tests/bench/BENCHMARKS.md.
bench: install wrk
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) .data
