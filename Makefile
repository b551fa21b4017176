# The two commands: `make demo` runs the main job, `make test` runs the test suite.
# Each first runs `make setup`, which creates .venv and installs the CPU stack (idempotent).
.PHONY: setup setup-gpu demo test test-fast lint format clean

PY := .venv/bin/python

setup:
	@bash scripts/setup_env.sh

setup-gpu:
	@bash scripts/setup_env.sh --gpu

demo: setup
	$(PY) -m launch.cli demo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not e2e"

lint: setup
	.venv/bin/ruff check .

format: setup
	.venv/bin/ruff format .

clean:
	rm -rf artifacts .pytest_cache .ruff_cache
