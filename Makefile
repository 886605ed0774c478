# StellarOps: `make run` starts the main job, `make test` runs every test. Both set up first.
SHELL := /bin/bash
PYTHON_PATHS := $(wildcard py_nodes orbital scheduler web tests bench)

.PHONY: run test setup lint shell bench clean distclean up down test-containers

run: setup
	.venv/bin/stellarops up

test:
	bash scripts/setup.sh --tests
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check $(PYTHON_PATHS)
	.venv/bin/mypy py_nodes orbital scheduler web bench
	rebar3 xref

shell:
	bash scripts/remsh.sh

# The compose stack (docker/compose.yaml) with `docker compose`, or Podman + podman-compose here:
# images built, secrets made, started, healthy. COMPOSE_PROFILES=observability adds Grafana,
# STELLAROPS_COMPOSE_DEV=1 the dev override. `make down` keeps the volumes (the database).
up:
	bash scripts/compose.sh up

down:
	bash scripts/compose.sh down

# The container tier: builds the images, runs the stack and checks it (tests/containers, which
# `make test` does not collect). .ci/run runs it after `make test`.
test-containers: setup
	.venv/bin/pytest -q tests/containers

# The three-host rebalancing drill alone.
test-rebalance: setup
	.venv/bin/pytest -q tests/containers/test_cluster_rebalance.py

# Benchmarks print side-by-side ratios against a reference measured in the same run.
bench: setup .venv/.bench-extra
	.venv/bin/python bench/dist_bench.py
	.venv/bin/python bench/sats_bench.py
	.venv/bin/python bench/orbital_bench.py
	.venv/bin/python bench/persistence_bench.py
	.venv/bin/python bench/gateway_bench.py
	.venv/bin/python bench/dashboard_bench.py
	.venv/bin/python bench/scheduler_bench.py

# The `bench` extra (skyfield for orbital_bench, ortools for scheduler_bench), again when pyproject.toml changes.
.venv/.bench-extra: pyproject.toml
	.venv/bin/pip install --quiet -e '.[bench]'
	touch $@

# Build outputs and caches. Keeps .venv and the state folder (.stellarops: the cookie).
clean:
	rm -rf _build test-output .mypy_cache .ruff_cache .pytest_cache .hypothesis erl_crash.dump rebar3.crashdump
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv
