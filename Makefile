# StreamForge: `make dev` runs the whole platform locally, `make test` runs every test tier.
# Both install what they need on first use (virtualenv, pip and npm packages, ffmpeg etc. through apt as root).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_OUTDIR := cdk.out

APT_DEV := ffmpeg
# openjdk-17-jdk-headless: LocalStack's DynamoDB (DynamoDB Local) runs on it, and javac builds its agent.
APT_TEST := ffmpeg chromium gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav openjdk-17-jdk-headless
PYTEST_ARGS ?=

.PHONY: dev test synth lint format bench deps system-deps-dev system-deps-test web-deps deploy destroy clean

# STREAMFORGE_EMULATOR=localstack: LocalStack (installed on first use) with moto for what it lacks.
dev: $(VENV)/.installed web-deps system-deps-dev synth
	$(PY) -m local.dev

test: $(VENV)/.installed web-deps system-deps-test synth
	$(PY) -m local.test_tiers $(PYTEST_ARGS)

synth: $(VENV)/.installed
	@$(PY) app.py > /dev/null

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy app.py infra local functions layers/shared/python media_tasks tests

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.installed system-deps-test synth
	@$(PY) -m local.bench

# The CDK CLI runs cdk.json's app with the virtualenv's python.
deploy: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" npx --yes aws-cdk@2 deploy --all

destroy: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" npx --yes aws-cdk@2 destroy --all --force

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

web-deps: web/node_modules/.installed

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

system-deps-dev:
	@./local/ensure_system_packages.sh $(APT_DEV)

system-deps-test:
	@./local/ensure_system_packages.sh $(APT_TEST)

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
