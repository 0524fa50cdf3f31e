# flaskstack.deploy - developer and CI entry points.
#   make test            everything CI runs: lint, pytest, every molecule scenario
#   make demo            a local bare host converged with site.yml over SSH
#   make scenario S=base one molecule scenario
#   make lint            yamllint + ansible-lint only
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# The TLS scanner (sslyze) lives in its own venv: it pins cryptography below the toolchain's.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
export PATH := $(BIN):$(PATH)
# MITOGEN=1 (any target): playbooks run with mitogen's linear strategy - opt-in,
# never a default; `make bench` measures what it gains (README, "Faster runs").
ifdef MITOGEN
export ANSIBLE_STRATEGY_PLUGINS := $(shell $(BIN)/python -c 'import ansible_mitogen, os; print(os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"))')
export ANSIBLE_STRATEGY := mitogen_linear
endif
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0

.PHONY: help venv engine images lint test scenario demo demo-clean audit docs bench lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.txt
	touch $@

$(SCAN_STAMP): requirements/scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/scan.txt
	touch $@

venv: $(STAMP) $(SCAN_STAMP) ## Create .venv (pinned toolchain) and .venv-scan (TLS scanner)

engine: ## Make sure a Docker engine and debootstrap are available
	@molecule/_harness/engine.sh

images: engine ## Build (or reuse) the Debian 12/13 test-host images
	@molecule/_harness/image.sh bookworm >/dev/null
	@molecule/_harness/image.sh trixie >/dev/null

lint: venv ## yamllint and ansible-lint (production profile)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint

test: venv images ## The test command: lint, pytest, all molecule scenarios
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

scenario: venv images ## Run one molecule scenario: make scenario S=base
	@test -n "$(S)" || { echo "usage: make scenario S=<name>"; exit 2; }
	$(BIN)/molecule test -s $(S)

demo: venv images ## Converge a local bare host with site.yml over SSH
	$(BIN)/ansible-playbook molecule/_harness/demo-up.yml
	$(BIN)/ansible-playbook site.yml -i inventories/local
	$(BIN)/ansible-playbook molecule/_harness/demo-report.yml -i inventories/local

demo-clean: venv ## Remove the demo host
	$(BIN)/ansible-playbook molecule/_harness/demo-down.yml

bench: venv images ## Speed figures of issue 13 on fresh hosts (table, .logs/bench/bench.json and .png)
	$(BIN)/python tools/bench/run.py

audit: venv ## lynis hardening index and service sandbox exposure of the demo host (after make demo)
	$(BIN)/ansible-playbook playbooks/audit.yml -i inventories/local -e audit_report_dir=$(CURDIR)/.logs/audit

docs: venv ## Regenerate role READMEs from meta/argument_specs.yml
	$(BIN)/python tools/role_docs.py

lock: ## Re-resolve requirements/{dev,scan}.txt from their .in files (hashes included)
	$(PYTHON) -m venv .cache/lockenv
	.cache/lockenv/bin/pip install --quiet pip-tools
	for req in dev scan; do \
	  .cache/lockenv/bin/pip-compile --generate-hashes --strip-extras --no-emit-index-url \
	    --no-emit-find-links -o requirements/$$req.txt requirements/$$req.in || exit 1; \
	done

clean: ## Remove the venv and caches (images stay)
	rm -rf $(VENV) $(SCAN_VENV) .cache/facts .pytest_cache
