# IndexForge developer entry points. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help setup system-deps tools tools-control-plane tools-charts tools-monitoring cluster-up cluster-down lint typecheck test test-unit \
        bench demo demo-down e2e-kind generate check-generated manifests clean stack-up stack-down

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv with the package (editable) and dev extras; idempotent

system-deps: ## install Debian packages the tests use (redis-server, redis-sentinel, prometheus, alertmanager, redis exporter, rabbitmq-server) if missing
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v amtool >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v prometheus-redis-exporter >/dev/null || missing="$$missing prometheus-redis-exporter"; \
	command -v rabbitmq-server >/dev/null || missing="$$missing rabbitmq-server"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

tools: $(STAMP) ## build or reuse every pinned Go-built binary, linked into .tools/bin
	$(PY) -m tests.cluster tools

# Subsets: a cold Go build costs minutes per tool, so entry points build only what they run.
tools-control-plane: $(STAMP) ## build or reuse only etcd, kube-* and kwok (cluster-up, demo)
	$(PY) -m tests.cluster tools --only control-plane

tools-charts: $(STAMP) ## build or reuse only helm and kubeconform (generate)
	$(PY) -m tests.cluster tools --only charts

tools-monitoring: $(STAMP) ## build or reuse only the monitoring tools (jaeger, redis_exporter)
	$(PY) -m tests.cluster tools --only monitoring

cluster-up: tools-control-plane ## start the local control plane; prints export KUBECONFIG=...
	@$(PY) -m tests.cluster up

cluster-down: ## stop the local control plane (every process it started)
	@$(PY) -m tests.cluster down

lint: setup ## ruff + mypy (strict on the operator)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: lint

generate: setup tools-charts ## regenerate the CRD, chart files and manifests/install.yaml
	$(VENV)/bin/indexforge crd > crds/indexforge.io_indexforges.yaml
	$(PY) -m hack.charts
	$(PY) -m hack.messages

check-generated: setup tools-charts ## fail when generated files are stale (also covered by tests)
	$(VENV)/bin/indexforge crd --check crds/indexforge.io_indexforges.yaml
	$(PY) -m hack.charts --check
	$(PY) -m hack.messages --check

manifests: generate ## alias: regenerate manifests/install.yaml and chart files

test-unit: setup tools ## fast tests, no cluster
	$(VENV)/bin/pytest -q -m "not cluster" tests

test: setup system-deps tools lint ## the full suite (README's test command; .ci/run calls it)
	env -u KUBECONFIG $(VENV)/bin/pytest -q --durations=40 tests

bench: setup system-deps ## benchmarks with figures (tests/bench)
	@for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) -m tests.bench.$$(basename $$b .py) || exit 1; done

demo: setup tools-control-plane ## fresh machine -> local control plane -> operator -> a Ready IndexForge
	$(PY) -m tests.demo

demo-down: ## stop what `make demo` started
	$(PY) -m tests.demo --down

stack-up: setup system-deps ## start the service stack on loopback; prints export INDEXFORGE_API=... (MONITORING=1: + Jaeger, Prometheus, Alertmanager; MESSAGING=1: + RabbitMQ, a worker)
	@$(PY) -m tests.stack up $(if $(filter 1 yes true,$(MONITORING)),--monitoring) $(if $(filter 1 yes true,$(MESSAGING)),--messaging)

stack-down: ## stop every process stack-up started
	@$(PY) -m tests.stack down

e2e-kind: setup ## run the e2e suite on a kind cluster (skipped without docker + kind)
	@bash tests/e2e/run-kind.sh

clean: cluster-down ## remove local state (keeps the tools cache outside the tree)
	rm -rf .cluster .tools .pytest_cache .mypy_cache .ruff_cache
