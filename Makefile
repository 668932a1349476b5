# fleetpatch.ssm developer entry points. `make help` lists the targets; `make demo` and `make test` are the two
# commands a fresh machine needs (README.md).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The venv is rebuilt when the requirements change: the stamp's name carries their hash.
REQUIREMENTS_HASH := $(shell cat requirements/*.txt | sha256sum | cut -c1-16)
VENV_STAMP := $(VENV)/.requirements-$(REQUIREMENTS_HASH)
# This machine's package index configuration makes pip print one "is ignored" warning per package.
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }

# Galaxy is out of reach: amazon.aws (our dependency) and the collections our playbooks use beside it (awx.awx for
# playbooks/awx_setup.yml, ansible.windows for the ssm_agent role's Windows tasks, ansible.posix) come from the
# `ansible` bundle's wheel on PyPI (12.3.0 carries amazon.aws 10.1.2).
ANSIBLE_BUNDLE := 12.3.0
BUNDLED_COLLECTIONS := amazon/aws awx/awx ansible/windows ansible/posix
COLLECTIONS := .cache/collections
AMAZON_AWS := $(COLLECTIONS)/ansible_collections/amazon/aws/MANIFEST.json
# ansible-playbook, ansible-doc and ansible-lint find this checkout as fleetpatch.ssm through a symlink.
# Never `ansible-galaxy collection install --force` into $(COLLECTIONS): it would delete the checkout.
SELF_LINK := $(COLLECTIONS)/ansible_collections/fleetpatch/ssm

LAB_STATE ?= .lab
# FLEET: a spec under tests/lab/fleets by name (FLEET=reference), a path, or `none`; empty = labctl's default.
FLEET ?=
fleet_arg = $(if $(FLEET),--fleet $(if $(wildcard tests/lab/fleets/$(FLEET).yml),tests/lab/fleets/$(FLEET).yml,$(FLEET)))
LABCTL = PYTHONPATH=tests/lab $(BIN)/python -m fleetlab.labctl
DEMO_FLEET := reference
REPORTS := reports

PYTEST = $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/$@.xml)

export PATH := $(abspath $(BIN)):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(abspath $(COLLECTIONS))

have_tests = $(shell find $(1) -name 'test_*.py' -print -quit 2>/dev/null)

.PHONY: help venv collections lab-up lab-down lab-status test test-lab test-unit test-sanity test-lint test-roles docs iam-check ee \
	test-integration build changelog bench demo clean distclean

help: ## list the targets
	@echo "fleetpatch.ssm: make <target> [FLEET=reference|none|path] [PYTEST_ARGS=...]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ printf "  %-17s %s\n", $$1, $$2 }'

# --- environment -----------------------------------------------------------------------------------------------

venv: $(VENV_STAMP) ## Python virtualenv .venv from requirements/test.txt (~30 s; again only when they change)

$(VENV_STAMP):
	@echo "venv: installing requirements/test.txt into $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements/test.txt $(QUIET_PIP)
	rm -f $(VENV)/.requirements-*
	touch $@

collections: $(AMAZON_AWS) $(SELF_LINK) ## amazon.aws and this checkout (as fleetpatch.ssm) in .cache/collections

$(AMAZON_AWS): Makefile | $(VENV_STAMP)
	$(BIN)/python -m pip download --quiet --no-deps -d .cache/wheels ansible==$(ANSIBLE_BUNDLE) $(QUIET_PIP)
	rm -rf $(foreach c,$(BUNDLED_COLLECTIONS),$(COLLECTIONS)/ansible_collections/$(c))
	$(BIN)/python -c 'import sys, zipfile; wheel = zipfile.ZipFile(sys.argv[1]); \
		wanted = tuple(f"ansible_collections/{c}/" for c in sys.argv[3:]); \
		wheel.extractall(sys.argv[2], [n for n in wheel.namelist() if n.startswith(wanted)])' \
		.cache/wheels/ansible-$(ANSIBLE_BUNDLE)-py3-none-any.whl $(COLLECTIONS) $(BUNDLED_COLLECTIONS)
	touch $@
	@echo "collections: amazon.aws $$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' $@)"

$(SELF_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

# --- lab -------------------------------------------------------------------------------------------------------

lab-up: venv ## start the lab in the background (FLEET=...); then `. .lab/env.sh`
	$(LABCTL) up --state-dir $(LAB_STATE) $(fleet_arg)

lab-down: ## stop the lab (harmless when it is not running)
	@if [ -x $(BIN)/python ]; then $(LABCTL) down --state-dir $(LAB_STATE); else echo "fleetlab is not running"; fi

lab-status: venv ## is the lab running?
	$(LABCTL) status --state-dir $(LAB_STATE)

# --- tests -----------------------------------------------------------------------------------------------------

test: venv collections ## everything, fastest first, stopping at the first failure: lab, unit, sanity, lint, integration, roles
	@for suite in test-lab test-unit test-sanity test-lint test-integration test-roles; do \
		echo "=== make $$suite"; start=$$SECONDS; \
		$(MAKE) $$suite || { echo "=== make $$suite FAILED after $$((SECONDS - start)) s"; exit 1; }; \
		echo "=== make $$suite passed in $$((SECONDS - start)) s"; \
	done

test-lab: venv ## the lab's own tests (tests/lab/tests; 2 workers: every test has its own account)
	FLEETLAB_SELFTEST=1 $(PYTEST) -n 2 -q tests/lab/tests

test-unit: venv collections ## unit tests of the plugins (tests/unit)
	$(if $(call have_tests,tests/unit),$(PYTEST) -q tests/unit,@echo "test-unit: no tests under tests/unit yet")

test-sanity: venv collections ## ansible-test sanity (+ units) on a copy of the collection (tests/ansible_test.sh)
	VENV=$(abspath $(VENV)) tests/ansible_test.sh all

test-lint: venv collections ## ansible-lint, production profile, offline (.ansible-lint)
	ansible-lint

test-integration: venv collections ## playbooks against the lab (tests/integration; 2 workers, a lab each)
	$(if $(call have_tests,tests/integration),$(PYTEST) -n 2 --dist loadfile -q tests/integration,@echo "test-integration: no tests yet")

# --- artifacts -------------------------------------------------------------------------------------------------

test-roles: venv collections ## the ssm_agent role on systemd-nspawn hosts (molecule; root; ~3 min warm, ~6 min cold)
	$(PYTEST) -q tests/roles

build: venv collections ## build/fleetpatch-ssm-<version>.tar.gz, installed in a temp dir and listed by ansible-doc
	rm -rf build && mkdir -p build
	ansible-galaxy collection build --output-path build .
	@# Only the temp dir on the collections path: the checkout itself is on the usual one.
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && export ANSIBLE_COLLECTIONS_PATH="$$tmp" && \
	ansible-galaxy collection install --offline --no-deps -p "$$tmp" build/fleetpatch-ssm-*.tar.gz && \
	mkdir -p "$$tmp/ansible_collections/amazon" && ln -s "$(abspath $(dir $(AMAZON_AWS)))" "$$tmp/ansible_collections/amazon/aws" && \
	ansible-doc -l fleetpatch.ssm --json > "$$tmp/listed.json" && \
	$(BIN)/python tests/tools/check_listed_modules.py "$$tmp/listed.json" plugins/modules

docs: venv collections ## regenerate docs/reference (a page per module, inventory plugin and role) from ansible-doc
	$(BIN)/python tools/docs_reference.py

iam-check: venv ## the AWS actions the code calls vs docs/iam's policies (tests/tools/iam_actions.py; also a unit test)
	$(BIN)/python tests/tools/iam_actions.py --check

ee: build ## the AWX execution environment image (needs podman or docker; execution-environment.yml)
	ansible-builder build -f execution-environment.yml -t fleetpatch-ssm-ee:$(shell sed -n 's/^version: *//p' galaxy.yml)

changelog: venv ## lint changelog fragments; RELEASE=1 also releases galaxy.yml's version into CHANGELOG.md
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	$(if $(RELEASE),antsibull-changelog release)

bench: venv collections ## run bench/bench_*.py (ratios against an anchor measured in the same run: bench/README.md)
	@found=; for bench in bench/bench_*.py; do \
		[ -e "$$bench" ] || continue; found=1; echo "=== $$bench"; $(BIN)/python "$$bench"; \
	done; [ -n "$$found" ] || echo "bench: no benchmarks yet (bench/bench_*.py)"

demo: venv collections ## the weekly cycle on the lab's reference fleet (site.yml, a sample approval, report)
	$(MAKE) lab-up FLEET=$(DEMO_FLEET)
	bash tests/lab/demo.sh
	@echo "demo: the lab is still running: . $(LAB_STATE)/env.sh to use it, make lab-down to stop it"

clean: ## remove build output, ansible-test output and Python caches (keeps .venv, .cache and a running lab)
	rm -rf build tests/output .pytest_cache .ruff_cache .mypy_cache
	find . \( -path ./.venv -o -path ./.cache -o -path ./.git \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: lab-down clean ## clean, and also remove .venv, .cache and .lab
	rm -rf $(VENV) .cache $(LAB_STATE)
