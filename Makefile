# One entry point for people and CI. `make run` and `make test` are the two set-up commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# mosquitto: the broker; postgresql: the head-end's fleet store; chromium: the web page test;
# tmux: the demo's panel checked on a real terminal.
DEBIAN_PACKAGES := mosquitto postgresql chromium chromium-driver tmux
# What `make run` needs of them: the broker that carries the demo's batches to the head-end.
DEMO_PACKAGES := mosquitto

.PHONY: run demo test lint bench fuzz debian-deps install-dev clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install-dev: $(STAMP)

# Debian packages the tests need (broker, PostgreSQL server, Chromium); installed only when missing.
debian-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

run: $(STAMP)
	@$(MAKE) --no-print-directory debian-deps DEBIAN_PACKAGES="$(DEMO_PACKAGES)"
	$(BIN)/gateway demo

demo: run

test: $(STAMP) debian-deps
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# dsmr-parser is what the DSMR figure is compared with: a bench-only package, kept apart in
# .bench-extra (appended to sys.path by hil/bench/dsmr_compare.py, so it shadows nothing)
BENCH_EXTRA := .bench-extra
$(BENCH_EXTRA)/.installed: $(STAMP)
	$(BIN)/pip install --quiet --no-warn-conflicts --target $(BENCH_EXTRA) 'dsmr-parser==1.*'
	touch $@

bench: $(STAMP) debian-deps $(BENCH_EXTRA)/.installed
	BENCH_EXTRA_PATH=$(CURDIR)/$(BENCH_EXTRA) $(BIN)/python -m hil.bench

# Fuzz every parser reachable from outside (docs/fuzzing.md); never part of `make test`.
# FUZZ_INPUTS, FUZZ_PER_TARGET, FUZZ_TARGETS, FUZZ_SEED, FUZZ_JOBS, FUZZ_TIMEOUT_S tune it.
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz

# On the Pi, as root: lays down the service user, unit, udev rules and config template (idempotent).
PREFIX ?= /opt/gateway
PURGE ?= 0
.PHONY: install uninstall
install:
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" sh board/system/install.sh

uninstall:
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" PURGE="$(PURGE)" sh board/system/uninstall.sh

clean:
	rm -rf $(VENV) build *.egg-info .hypothesis .mypy_cache .ruff_cache $(BENCH_EXTRA)
