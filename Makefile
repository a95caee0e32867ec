# The two set-up commands: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv with the project and its dev tools when missing; only python3 and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-postgres lint bench bench-smoke bench-postgres clean langgraph-suite

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cli,notebook,server,postgres,analytics]' --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/swarm-obs demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The PostgreSQL tests against a throwaway local cluster (Debian's postgresql; installed when missing as root),
# or against the server in $$SWARM_OBS_TEST_PG_URL when set.
test-postgres: $(STAMP)
	.ci/with-postgres.sh $(BIN)/python -m pytest -q -m postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# The PostgreSQL section against a throwaway local cluster (or $$SWARM_OBS_BENCH_PG_URL / $$SWARM_OBS_TEST_PG_URL).
bench-postgres: $(STAMP)
	.ci/with-postgres.sh $(BIN)/python -m benchmarks.run --only postgres

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks.run --smoke

# A real Jaeger v2 (all-in-one) built with Go into ~/.cache/swarm-observability/jaeger/bin (once per machine, reused by every clone); see scripts/jaeger.sh.
jaeger:
	scripts/jaeger.sh build

clean:
	rm -rf $(VENV) .swarm .pytest_cache build *.egg-info

# Opt-in (not in `make test`): LangGraph's own suites plain and with every graph instrumented.
SUITE ?= prebuilt
langgraph-suite: $(STAMP)
	$(BIN)/python scripts/langgraph_suite/run.py $(SUITE)
