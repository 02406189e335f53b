# The two commands a newcomer needs: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test test-fast fuzz lint policy services bench bench-1m bench-ssf lock config-docs clean

$(STAMP): pyproject.toml verifier/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# idp-verifier (verifier/) is its own distribution, for resource servers and examples/.
	$(BIN)/pip install -q -e '.[dev]' -e ./verifier
	touch $(STAMP)

## install: create or update .venv (idempotent)
install: $(STAMP)

## run: start idp on SQLite with a demo client and admin user
run: install
	$(BIN)/python -m idp.demo

## lint: ruff (lint and format) everywhere; mypy --strict on idp/, admin/ and verifier/, and on tests/
lint: install
	$(BIN)/ruff check idp admin tests bench examples verifier
	$(BIN)/ruff format --check idp admin tests bench examples verifier
	$(BIN)/mypy
	$(BIN)/mypy verifier/tests

## policy: checkov on deploy/k8s and the Dockerfile, from its own .venv-policy (~290 MB, not in make test)
# Skipped on purpose: CKV_K8S_21 (the namespace is yours: kustomize or -n), CKV_K8S_43 and
# CKV_K8S_15 (the example image is a versioned tag; pin a digest in your overlay),
# CKV_K8S_35 (idp reads its secrets from the environment).
policy:
	test -x .venv-policy/bin/checkov || ($(PY) -m venv .venv-policy && .venv-policy/bin/pip install -q checkov)
	.venv-policy/bin/checkov -d deploy --framework kubernetes dockerfile --skip-download \
	  --compact --quiet --skip-check CKV_K8S_21,CKV_K8S_43,CKV_K8S_15,CKV_K8S_35

## services: make sure PostgreSQL, Redis, Chromium, wrk, HAProxy and node deps are there
services:
	bash deploy/dev-services.sh

## test: the whole suite (lint, unit, integration on SQLite+PostgreSQL+Redis, browser, conformance)
test: install services
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest

## test-fast: unit and SQLite integration tests, no browser or extra processes (under 2 minutes)
test-fast: install
	$(BIN)/python -m pytest -m "not slow" --backend sqlite -n auto $(ARGS)

## fuzz: the property-based tests with fresh randomness and many more examples (FUZZ_EXAMPLES=500)
fuzz: install services
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -m fuzz $(ARGS)

## bench: idp side by side with node-oidc-provider, one core each (~15 min; ARGS=--quick ~5 min), into bench/RESULTS.md
bench: install services
	$(BIN)/python bench/compare.py $(ARGS)

## bench-1m: the sessions page and a kill with 1,000,000 sessions in PostgreSQL (~6 min)
bench-1m: install services
	$(BIN)/python bench/sessions_1m.py

## bench-ssf: kill → refusal at 50 resource servers by idp's feed, SSF poll and SSF push (~7 min; ARGS="--receivers 5 --seconds 10")
bench-ssf: install services
	$(BIN)/python -m bench.ssf_latency $(ARGS)

## lock: pin the runtime dependencies (and the tracing extra) with hashes into requirements.lock (keeps pins; ARGS=--upgrade moves them)
lock: install
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
		--allow-unsafe --no-emit-find-links --no-emit-index-url --output-file requirements.lock \
		--extra tracing \
		$(ARGS) pyproject.toml

## config-docs: rewrite the configuration reference in docs/operations.md from idp/config.py
config-docs: install
	$(BIN)/python -m idp.config_reference --write docs/operations.md

clean:
	rm -rf $(VENV) .venv-policy instance .pytest_cache .mypy_cache .ruff_cache
