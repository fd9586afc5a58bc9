# Interview Scheduler — every command a developer or CI needs. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(PYTHON) -m uv
PYTEST := $(UV) run --frozen pytest
ONCE ?=
ONCE_FLAG := $(if $(ONCE),--once,)

# Suites: the fast ones run alone with `make test-fast`; broker-outage tests stop RabbitMQ's
# application (root only) and so run in their own pytest invocation, never beside other tests.
FAST := not slow and not broker_outage and not e2e and not browser

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-28s %s\n",$$1,$$2}'

.PHONY: uv
uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.PHONY: install
install: uv ## install the workspace (locked)
	@$(UV) sync --frozen --quiet

# Page tests drive Debian's Chromium (Playwright never downloads a browser here).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the page tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
	      || echo "could not install chromium: page tests will be skipped"; \
	  else echo "chromium not found and not root: page tests will be skipped"; fi; }

.PHONY: up
up: install ## run the whole system with its dev sandbox (Ctrl-C stops it)
	@$(UV) run --frozen python tools/stack.py up

.PHONY: db
db: install ## create and migrate every service database (what `make up` does first)
	@$(UV) run --frozen python tools/stack.py migrate

.PHONY: test
test: install chromium ## every suite CI runs (fast, e2e, pages, then broker-outage tests alone)
	@$(PYTEST) -m "not slow and not broker_outage" -p no:cacheprovider
	@$(MAKE) --no-print-directory test-broker-outage

.PHONY: test-fast
test-fast: install ## unit and integration tests only (no process start-up, no broker stops)
	@$(PYTEST) -m "$(FAST)"

.PHONY: test-e2e
test-e2e: install chromium ## the end-to-end suite (starts the real processes; pages in Chromium)
	@$(PYTEST) -m "e2e and not slow"

.PHONY: test-broker-outage
test-broker-outage: install ## tests that stop RabbitMQ (root only; skipped otherwise)
	@$(PYTEST) -m "broker_outage and not slow" -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no broker-outage tests selected"; exit 0; fi; exit $$rc

.PHONY: test-slow
test-slow: install ## the long fault and load runs, property tests at 2,000 examples, hostile input at 1,000
	@HYPOTHESIS_PROFILE=slow $(PYTEST) -m "slow or hypothesis"
	@HOSTILE_CASES=1000 $(PYTEST) tests/e2e/test_hostile_input.py

.PHONY: lint
lint: install ## ruff (lint + format check) and mypy --strict on src/
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy libs/*/src services/*/src

.PHONY: format
format: install ## apply ruff's formatting and safe fixes
	@$(UV) run --frozen ruff check --fix .
	@$(UV) run --frozen ruff format .

.PHONY: contracts
contracts: install ## re-export the event JSON Schemas into libs/contracts/schemas
	@$(UV) run --frozen python -m scheduler_contracts.export

.PHONY: bench
bench: install ## benchmarks under bench/, printing figures (BENCH_ARGS=--quick for short runs)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null; } || true
	@$(UV) run --frozen python bench/run.py $(BENCH_ARGS)

.PHONY: scheduler-sync scheduler-webhook-process scheduler-reconcile
scheduler-sync: install ## the iCIMS sync worker (ONCE=1 for one pass)
	@$(UV) run --frozen scheduler-sync $(ONCE_FLAG)
scheduler-webhook-process: install ## the webhook processor (ONCE=1 for one pass)
	@$(UV) run --frozen scheduler-webhook-process $(ONCE_FLAG)
scheduler-reconcile: install ## the reconciler (ONCE=1 for one pass)
	@$(UV) run --frozen scheduler-reconcile $(ONCE_FLAG)
