# `make run` and `make test` work on a fresh machine with nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean

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

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check service tests

clean:
	rm -rf $(VENV) .data
