# flaskstack.deploy - developer and CI entry points.
#   make test            everything CI runs: lint, pytest, every molecule scenario
#   make demo            a local bare host converged with site.yml over SSH
#   make scenario S=base one molecule scenario
#   make lint            yamllint + ansible-lint only
# Two ansible lines are tested: the pinned one (.venv, requirements/dev.txt) and
# the newest users install (.venv-newest, requirements/newest.txt, Python 3.12+):
# ansible-lint and the site scenario run under both (tests/test_lint.py, tests/test_molecule.py).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# The TLS scanner (sslyze) lives in its own venv: it pins cryptography below the toolchain's.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
# The newest ansible line (ansible-core 2.21 needs Python >= 3.12): pyenv's 3.12, else python3.12 on PATH.
NEWEST_PYTHON ?= $(firstword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.12.*/bin/python3) $(shell command -v python3.12))
NEWEST_VENV := .venv-newest
NEWEST_STAMP := $(NEWEST_VENV)/.installed
CHECK_NEWEST_PYTHON = @test -n "$(NEWEST_PYTHON)" && "$(NEWEST_PYTHON)" -c 'import sys; sys.exit(sys.version_info < (3, 12))' \
	|| { echo "NEWEST_PYTHON='$(NEWEST_PYTHON)' is no Python >= 3.12 (ansible-core 2.21 needs one): run make with NEWEST_PYTHON=/path/to/python3.12" >&2; exit 2; }
LOCK_FLAGS := --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links
export PATH := $(BIN):$(PATH)
# MITOGEN=1 (any target): playbooks run with mitogen's linear strategy - opt-in,
# never a default; `make bench` measures what it gains (README, "Faster runs").
ifdef MITOGEN
export ANSIBLE_STRATEGY_PLUGINS := $(shell $(BIN)/python -c 'import ansible_mitogen, os; print(os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"))')
export ANSIBLE_STRATEGY := mitogen_linear
endif
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0

.PHONY: help venv engine images browser lint test scenario demo demo-clean audit docs bench lock clean

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

$(NEWEST_STAMP): requirements/newest.txt
	$(CHECK_NEWEST_PYTHON)
	$(NEWEST_PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/newest.txt
	touch $@

venv: $(STAMP) $(SCAN_STAMP) $(NEWEST_STAMP) ## Create .venv (pinned toolchain), .venv-scan (TLS scanner), .venv-newest (newest ansible)

engine: ## Make sure a Docker engine and debootstrap are available
	@molecule/_harness/engine.sh

# The stock images first, then the ones with base converged on them (base-image.sh),
# the two suites at once; each is reused until what it is built from changes.
images: engine venv ## Build (or reuse) the Debian 12/13 test-host images (stock, and with base converged)
	@molecule/_harness/image.sh bookworm >/dev/null
	@molecule/_harness/image.sh trixie >/dev/null
	@molecule/_harness/base-image.sh bookworm >/dev/null & bookworm=$$!; \
	  molecule/_harness/base-image.sh trixie >/dev/null; trixie=$$?; \
	  wait $$bookworm && exit $$trixie

# The site scenario's browser test: Debian's chromium and its chromedriver, and
# certutil to trust the test ACME CA in the browser's own certificate store.
BROWSER_PACKAGES := chromium chromium-driver libnss3-tools
browser: ## Install Debian's chromium, chromedriver and certutil (the site scenario's browser test)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v certutil >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(BROWSER_PACKAGES) >/dev/null; }

lint: venv ## yamllint and ansible-lint (production profile)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint

test: venv images browser ## The test command: lint, pytest, all molecule scenarios
	$(BIN)/python -m pytest tests -n 2 --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

scenario: venv images browser ## Run one molecule scenario: make scenario S=base
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

lock: ## Re-resolve requirements/{dev,scan,newest}.txt from their .in files (hashes included)
	$(CHECK_NEWEST_PYTHON)
	$(PYTHON) -m venv .cache/lockenv
	.cache/lockenv/bin/pip install --quiet pip-tools
	for req in dev scan; do \
	  .cache/lockenv/bin/pip-compile $(LOCK_FLAGS) -o requirements/$$req.txt requirements/$$req.in || exit 1; \
	done
	$(NEWEST_PYTHON) -m venv .cache/lockenv-newest
	.cache/lockenv-newest/bin/pip install --quiet pip-tools
	.cache/lockenv-newest/bin/pip-compile $(LOCK_FLAGS) -o requirements/newest.txt requirements/newest.in

clean: ## Remove the venvs and caches (images stay)
	rm -rf $(VENV) $(SCAN_VENV) $(NEWEST_VENV) .cache/facts .cache/facts-* .pytest_cache
